"""The OpenAPI document: every status and body each endpoint really returns.

FastAPI documents only the success body and a 422 this router never sends
(validation errors are 400s in OpenAI shape). This module replaces each
operation's responses with the full, true set, so clients and the fuzzing
tests can hold the router to it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from llm_router.classifiers.base import TASKS

_JSON = "application/json"

ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

_DESCRIPTIONS = {
    400: "Invalid JSON, schema, message count or prompt size.",
    401: "Missing or wrong API key (only when keys are configured).",
    404: "Unknown model or request id.",
    405: "Method not allowed.",
    413: "Body over the configured limit.",
    429: "Per-key rate limit, upstream throttling or an exhausted tier budget; "
    "see Retry-After.",
    500: "Unexpected router failure (a bug; logged with the request id).",
    502: "The upstream failed (and so did every fallback tier).",
    504: "The upstream timed out (and so did every fallback tier).",
}

_ROUTER_HEADERS = {
    name: {"description": text, "schema": {"type": "string"}}
    for name, text in (
        ("x-request-id", "The request id (the client's, if well formed)."),
        ("x-router-tier", "The tier that answered."),
        ("x-router-routed-tier", "The tier the decision chose."),
        ("x-router-fallbacks", "How many times the call moved to another tier."),
        ("x-router-model", "The model that answered."),
        ("x-router-task", "The task the classifier chose."),
    )
}

_CHAT_COMPLETION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array", "items": {"type": "object"}},
        "usage": {"type": "object"},
    },
}

# One server-sent event: a JSON chunk, an in-band error object or `[DONE]`.
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"const": "message"},
        "data": {"type": "string", "pattern": r"^(\[DONE\]|\{.*\})$"},
    },
}

_DECISION: dict[str, Any] = {
    "type": "object",
    "required": ["tier", "model", "task", "complexity", "reason", "decision_ms"],
    "properties": {
        "tier": {"type": "string"},
        "model": {"type": "string"},
        "task": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "complexity": {"type": "number", "minimum": 0, "maximum": 1},
        "top_tasks": {"type": "array", "items": {"type": "object"}},
        "reason": {"type": "string"},
        "classifier": {"type": "string"},
        "forced": {"type": "boolean"},
        "cache_hit": {"type": "boolean"},
        "decision_ms": {"type": "number", "minimum": 0},
    },
}

_MODELS: dict[str, Any] = {
    "type": "object",
    "required": ["object", "data"],
    "properties": {
        "object": {"const": "list"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "object"],
                "properties": {"id": {"type": "string"}, "object": {"const": "model"}},
            },
        },
    },
}

_FEEDBACK: dict[str, Any] = {
    "type": "object",
    "required": ["request_id", "recorded"],
    "properties": {"request_id": {"type": "string"}, "recorded": {"const": True}},
}

_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}},
}


def _ok(schema: dict[str, Any], *, headers: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": "Success.",
        "content": {_JSON: {"schema": schema}},
    }
    if headers:
        response["headers"] = _ROUTER_HEADERS
    return response


# (path, method) -> success response and the error statuses it can answer.
_OPERATIONS: dict[tuple[str, str], tuple[dict[str, Any], tuple[int, ...]]] = {
    ("/v1/chat/completions", "post"): (
        {
            "description": "A completion, or server-sent events when `stream` is "
            "true (ending with `data: [DONE]`).",
            "headers": _ROUTER_HEADERS,
            "content": {
                _JSON: {"schema": _CHAT_COMPLETION},
                "text/event-stream": {"schema": _SSE_EVENT},
            },
        },
        (400, 401, 404, 413, 429, 502, 504),
    ),
    ("/v1/route", "post"): (_ok(_DECISION), (400, 401, 404)),
    ("/v1/models", "get"): (_ok(_MODELS), (401,)),
    ("/v1/feedback", "post"): (_ok(_FEEDBACK), (400, 401, 404)),
    ("/healthz", "get"): (_ok(_STATUS), ()),
    ("/readyz", "get"): (_ok(_STATUS), ()),
    ("/metrics", "get"): (
        {
            "description": "Prometheus text exposition.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        (),
    ),
}


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` document every status each endpoint returns."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                success, errors = _OPERATIONS.get(
                    (path, method), (operation["responses"].get("200"), ())
                )
                responses: dict[str, Any] = {"200": success}
                for status in (*errors, 500):
                    responses[str(status)] = {
                        "description": _DESCRIPTIONS[status],
                        "content": {_JSON: {"schema": ERROR_BODY}},
                    }
                operation["responses"] = responses
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        _hoist_definitions(document, schemas)
        feedback = schemas.get("FeedbackRequest", {}).get("properties", {})
        if "task" in feedback:
            # Checked in the handler (for a message naming the tasks); the
            # document states the same set.
            feedback["task"]["anyOf"] = [
                {"type": "string", "enum": list(TASKS)},
                {"type": "null"},
            ]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]


def _hoist_definitions(document: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Move `$defs` of hand-declared request bodies into `components.schemas`.

    The chat body's schema comes from pydantic with `$defs` and refs that point
    at `#/components/schemas/...`; those refs only resolve once the definitions
    live there.
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                for name, definition in (
                    media.get("schema", {}).pop("$defs", {}).items()
                ):
                    schemas.setdefault(name, definition)
