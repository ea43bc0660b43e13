"""`POST /v1/chat/completions`: decide, call the tier's provider, account.

The hot path avoids FastAPI's body parsing and response encoding: the body is
read once, parsed with orjson, validated with pydantic and then forwarded as
the dict the client sent, so unknown fields reach the upstream untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from llm_router.api.schemas import ChatCompletionRequest
from llm_router.errors import (
    InvalidRequest,
    PayloadTooLarge,
    RequestError,
    UpstreamError,
)
from llm_router.providers.base import JSON, UpstreamCall, Usage
from llm_router.providers.simulated import estimate_prompt_tokens
from llm_router.routing.decision import Decision
from llm_router.service import RouterService
from llm_router.telemetry.records import RequestRecord

logger = logging.getLogger(__name__)

_JSON = "application/json"
_SSE_DONE = b"data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    """Route one chat request and return the upstream's answer."""
    service: RouterService = request.app.state.service
    started = time.perf_counter()
    request_id = request.state.request_id
    rec = RequestRecord(request_id=request_id)
    try:
        body = await read_json_body(request, service.settings.max_body_bytes)
        chat = validate_chat(body, service)
        decision = await service.router.decide(body["messages"], chat.model)
    except RequestError as exc:
        rec.status, rec.error = exc.status_code, exc.code or "invalid_request"
        service.recorder.record(rec)
        raise

    _describe_decision(rec, decision)
    service.recent.remember(request_id, decision.tier, decision.task)
    headers = decision_headers(decision, request_id)
    call = UpstreamCall(
        tier=decision.tier,
        config=service.policy.tiers[decision.tier],
        body=_upstream_body(body, service, decision.tier),
        request_id=request_id,
    )
    rec.provider = service.provider_for(decision.tier).name
    if chat.stream:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        return await _stream(service, call, rec, headers, include_usage, started)
    return await _complete(service, call, rec, headers)


async def read_json_body(request: Request, limit: int) -> Any:
    """The parsed JSON body; 413 over `limit` bytes, 400 if it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = (
            f"Request body is not valid JSON ({exc.msg} at position {exc.pos}). "
            "Send an OpenAI chat-completions request as a JSON object."
        )
        raise InvalidRequest(msg, code="invalid_json") from None


def validate_chat(body: Any, service: RouterService) -> ChatCompletionRequest:
    """Validate the body as a chat request within the configured limits."""
    if not isinstance(body, dict):
        msg = (
            f"Request body must be a JSON object, not {type(body).__name__}. "
            "Send an OpenAI chat-completions request."
        )
        raise InvalidRequest(msg, code="invalid_request")
    try:
        chat = ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None
    settings = service.settings
    if len(chat.messages) > settings.max_messages:
        msg = (
            f"Request has {len(chat.messages)} messages; this router accepts at "
            f"most {settings.max_messages}."
        )
        raise InvalidRequest(msg, param="messages", code="too_many_messages")
    estimated = estimate_prompt_tokens(body)
    if estimated > settings.max_prompt_tokens:
        msg = (
            f"The prompt is about {estimated} tokens; this router accepts at most "
            f"{settings.max_prompt_tokens}. Shorten the conversation."
        )
        raise InvalidRequest(msg, param="messages", code="context_length_exceeded")
    return chat


def invalid_from_validation(exc: ValidationError) -> InvalidRequest:
    """A 400 naming the first invalid field and what it accepts."""
    error = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in error["loc"])
    message = f"Invalid value for '{location}': {error['msg']}."
    if error["type"] == "missing":
        message = f"Missing required field '{location}'."
    return InvalidRequest(message, param=location or None, code="invalid_value")


def decision_headers(decision: Decision, request_id: str) -> dict[str, str]:
    """The `x-router-*` headers every routed response carries."""
    return {
        "x-request-id": request_id,
        "x-router-tier": decision.tier,
        "x-router-task": decision.task,
        "x-router-complexity": f"{decision.complexity:.4f}",
        "x-router-model": decision.model,
        "x-router-decision-ms": f"{decision.decision_ms:.3f}",
    }


async def _complete(
    service: RouterService,
    call: UpstreamCall,
    rec: RequestRecord,
    headers: dict[str, str],
) -> Response:
    provider = service.provider_for(call.tier)
    sent = time.perf_counter()
    try:
        completion = await provider.complete(call)
    except UpstreamError as exc:
        _fail(service, rec, exc, sent)
        raise
    rec.upstream_ms = (time.perf_counter() - sent) * 1000
    body = completion.body
    body["model"] = call.config.model
    _account(service, rec, call, completion.usage)
    return Response(orjson.dumps(body), media_type=_JSON, headers=headers)


async def _stream(
    service: RouterService,
    call: UpstreamCall,
    rec: RequestRecord,
    headers: dict[str, str],
    include_usage: bool,
    started: float,
) -> Response:
    provider = service.provider_for(call.tier)
    rec.stream = True
    sent = time.perf_counter()
    chunks = provider.stream(call).__aiter__()
    try:
        # Wait for the first chunk before answering, so a failure before the
        # first byte is still an HTTP error the client (and fallback) can see.
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = None
    except UpstreamError as exc:
        _fail(service, rec, exc, sent)
        raise
    rec.ttft_ms = (time.perf_counter() - started) * 1000

    async def events() -> AsyncIterator[bytes]:
        usage = Usage()
        model = call.config.model
        try:
            chunk = first
            while chunk is not None:
                if chunk.get("usage"):
                    usage = Usage.from_openai(chunk["usage"])
                    if not include_usage:
                        if not chunk.get("choices"):
                            chunk = await anext(chunks, None)
                            continue
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                chunk["model"] = model
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
                chunk = await anext(chunks, None)
            yield _SSE_DONE
        except UpstreamError as exc:
            # Headers are gone: tell the client in-band, then end the stream.
            rec.status, rec.error = exc.status_code, exc.reason
            yield b"data: " + orjson.dumps(exc.to_body()) + b"\n\n"
            yield _SSE_DONE
        finally:
            rec.upstream_ms = (time.perf_counter() - sent) * 1000
            _account(service, rec, call, usage)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**headers, "cache-control": "no-cache"},
    )


def _upstream_body(body: JSON, service: RouterService, tier: str) -> JSON:
    cap = service.policy.tiers[tier].max_tokens
    if cap is None:
        return body
    body = dict(body)
    for key in ("max_tokens", "max_completion_tokens"):
        if isinstance(body.get(key), int):
            body[key] = min(body[key], cap)
    if "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = cap
    return body


def _describe_decision(rec: RequestRecord, decision: Decision) -> None:
    rec.tier = rec.routed_tier = decision.tier
    rec.task = decision.task
    rec.complexity = round(decision.complexity, 4)
    rec.confidence = round(decision.confidence, 4)
    rec.model = decision.model
    rec.classifier = decision.classifier
    rec.reason = decision.reason
    rec.decision_ms = round(decision.decision_ms, 4)
    rec.cache_hit = decision.cache_hit


def _account(
    service: RouterService, rec: RequestRecord, call: UpstreamCall, usage: Usage
) -> None:
    rec.input_tokens, rec.output_tokens = usage.input_tokens, usage.output_tokens
    rec.cost_usd = call.config.cost_usd(usage.input_tokens, usage.output_tokens)
    rec.upstream_ms = round(rec.upstream_ms, 3)
    if rec.ttft_ms is not None:
        rec.ttft_ms = round(rec.ttft_ms, 3)
    service.recorder.record(rec)


def _fail(
    service: RouterService, rec: RequestRecord, exc: UpstreamError, sent: float
) -> None:
    rec.status, rec.error = exc.status_code, exc.reason
    rec.upstream_ms = round((time.perf_counter() - sent) * 1000, 3)
    service.recorder.record(rec)


def _too_large(limit: int) -> PayloadTooLarge:
    msg = f"Request body is larger than this router's limit of {limit} bytes."
    return PayloadTooLarge(msg, code="body_too_large")
