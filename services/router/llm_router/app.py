"""The FastAPI application: endpoints, error bodies, request ids."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_router import __version__
from llm_router.api import chat, operations
from llm_router.api.openapi import install_openapi
from llm_router.api.schemas import ChatCompletionRequest
from llm_router.errors import RequestError
from llm_router.reliability.auth import AuthMiddleware
from llm_router.reliability.reload import PolicyReloader
from llm_router.service import RouterService
from llm_router.settings import Settings

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(
    settings: Settings | None = None, service: RouterService | None = None
) -> FastAPI:
    """Build the router application (the service is built from settings if absent)."""
    settings = settings or Settings()
    service = service or RouterService.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reloader = PolicyReloader(app.state.service)
        await reloader.start()
        try:
            yield
        finally:
            await reloader.stop()
            await app.state.service.aclose()

    app = FastAPI(
        title="llm-router",
        version=__version__,
        summary="OpenAI-compatible gateway routing each turn to the cheapest "
        "capable model tier.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_api_route(
        "/v1/chat/completions",
        chat.chat_completions,
        methods=["POST"],
        tags=["chat"],
        summary="Create a chat completion on the tier the router chooses.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": ChatCompletionRequest.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        )
                    }
                },
            }
        },
    )
    app.include_router(operations.router)
    install_openapi(app)
    _install_error_handlers(app)

    if service.api_keys:
        app.add_middleware(
            AuthMiddleware, keys=service.api_keys, recorder=service.recorder
        )
    app.add_middleware(RequestIdMiddleware)

    return app


class RequestIdMiddleware:
    """Gives every request an id (the client's, if well formed) and echoes it.

    Pure ASGI rather than `BaseHTTPMiddleware`, which costs measurable latency
    per request and buffers nothing we need.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if _REQUEST_ID.match(incoming) else os.urandom(12).hex()
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_router_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return JSONResponse(exc.to_body(), exc.status_code, headers=exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        error = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        location = ".".join(str(p) for p in error["loc"] if p != "body")
        body = {
            "error": {
                "message": f"Invalid value for '{location}': {error['msg']}.",
                "type": "invalid_request_error",
                "param": location or None,
                "code": "invalid_value",
            }
        }
        return JSONResponse(body, 400)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = {
            404: f"No endpoint at {request.url.path}. See /docs for the API.",
            405: f"Method {request.method} is not allowed on {request.url.path}.",
        }.get(exc.status_code, str(exc.detail))
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": f"http_{exc.status_code}",
            }
        }
        return JSONResponse(body, exc.status_code, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        logger.error(
            "unhandled %s on %s", type(exc).__name__, request.url.path, exc_info=exc
        )
        body = {
            "error": {
                "message": "The router failed unexpectedly; the error is logged "
                "with this request's id.",
                "type": "server_error",
                "param": None,
                "code": "internal_error",
            }
        }
        return JSONResponse(body, 500)

    app.add_exception_handler(RequestError, on_router_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
