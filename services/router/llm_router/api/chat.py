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
from llm_router.providers.base import JSON, Completion, Provider, UpstreamCall, Usage
from llm_router.providers.simulated import estimate_prompt_tokens
from llm_router.reliability.auth import ANONYMOUS
from llm_router.routing.decision import Decision
from llm_router.service import Generation, RouterService
from llm_router.telemetry.records import RequestRecord

logger = logging.getLogger(__name__)

_JSON = "application/json"
_SSE_DONE = b"data: [DONE]\n\n"


async def chat_completions(request: Request) -> Response:
    """Route one chat request and return the upstream's answer."""
    service: RouterService = request.app.state.service
    # One generation for the whole request: a reload mid-request changes
    # nothing this request sees.
    generation = service.generation
    started = time.perf_counter()
    request_id = request.state.request_id
    key_id: str = request.scope["state"].get("api_key_id", ANONYMOUS)
    rec = RequestRecord(request_id=request_id, api_key_id=key_id)
    try:
        if service.limiter is not None:
            await service.limiter.admit(key_id)
        body = await read_json_body(request, service.settings.max_body_bytes)
        chat = validate_chat(body, service)
        decision = await generation.router.decide(
            body["messages"],
            chat.model,
            issued_by=await _tool_call_tier(service, body["messages"]),
        )
        _describe_decision(rec, decision)
        tier = decision.tier
        if generation.has_budgets:
            tier, why = await service.budgets.choose(generation.policy, tier)
            if why is not None:
                rec.reason = f"{rec.reason}; {why}"
    except RequestError as exc:
        rec.status, rec.error = exc.status_code, exc.code or "invalid_request"
        service.recorder.record(rec)
        raise

    service.recent.remember(request_id, tier, decision.task)
    headers = decision_headers(decision, request_id)
    if chat.stream:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        return await _stream(
            service, generation, tier, body, rec, headers, include_usage, started
        )
    return await _complete(service, generation, tier, body, rec, headers)


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
    generation: Generation,
    tier: str,
    body: JSON,
    rec: RequestRecord,
    headers: dict[str, str],
) -> Response:
    sent = time.perf_counter()
    try:
        call, completion = await service.dispatcher.run(
            generation.policy, generation.providers, tier, body, _complete_once, rec
        )
    except UpstreamError as exc:
        _fail(service, rec, exc, sent, headers)
        raise
    rec.upstream_ms = (time.perf_counter() - sent) * 1000
    _answered_by(generation, rec, headers, call)
    answer = completion.body
    answer["model"] = call.config.model
    for choice in answer.get("choices") or ():
        message = choice.get("message") or {}
        _remember_tool_calls(service, message, call.tier, rec.task)
    _account(service, rec, call, completion.usage)
    return Response(orjson.dumps(answer), media_type=_JSON, headers=headers)


async def _complete_once(provider: Provider, call: UpstreamCall) -> Completion:
    return await provider.complete(call)


async def _open_stream(
    provider: Provider, call: UpstreamCall
) -> tuple[AsyncIterator[JSON], JSON | None]:
    # Wait for the first chunk before answering, so a failure before the
    # first byte is still an HTTP error the client (and fallback) can see.
    chunks = provider.stream(call).__aiter__()
    try:
        return chunks, await chunks.__anext__()
    except StopAsyncIteration:
        return chunks, None


async def _stream(
    service: RouterService,
    generation: Generation,
    tier: str,
    body: JSON,
    rec: RequestRecord,
    headers: dict[str, str],
    include_usage: bool,
    started: float,
) -> Response:
    rec.stream = True
    sent = time.perf_counter()
    try:
        call, (chunks, first) = await service.dispatcher.run(
            generation.policy, generation.providers, tier, body, _open_stream, rec
        )
    except UpstreamError as exc:
        _fail(service, rec, exc, sent, headers)
        raise
    _answered_by(generation, rec, headers, call)

    async def events() -> AsyncIterator[bytes]:
        usage = Usage()
        model = call.config.model
        try:
            chunk = first
            while chunk is not None:
                if rec.ttft_ms is None and _carries_tokens(chunk):
                    rec.ttft_ms = (time.perf_counter() - started) * 1000
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    _remember_tool_calls(service, delta, call.tier, rec.task)
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


def _answered_by(
    generation: Generation,
    rec: RequestRecord,
    headers: dict[str, str],
    call: UpstreamCall,
) -> None:
    """Point the record and headers at the tier that actually answered."""
    rec.provider = generation.providers[call.config.provider].name
    headers["x-router-routed-tier"] = rec.routed_tier
    headers["x-router-fallbacks"] = str(rec.fallbacks)
    if call.tier != rec.routed_tier:
        rec.tier = call.tier
        rec.model = call.config.model
        headers["x-router-tier"] = call.tier
        headers["x-router-model"] = call.config.model


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
    if call.config.daily_budget_usd is not None:
        service.budgets.charge(call.tier, rec.cost_usd)
    if service.limiter is not None and rec.api_key_id is not None:
        service.limiter.charge(rec.api_key_id, usage.input_tokens + usage.output_tokens)
    rec.upstream_ms = round(rec.upstream_ms, 3)
    if rec.ttft_ms is not None:
        rec.ttft_ms = round(rec.ttft_ms, 3)
    service.recorder.record(rec)


async def _tool_call_tier(service: RouterService, messages: list[JSON]) -> str | None:
    """The tier that issued the tool call a request's last message answers."""
    last = messages[-1] if messages else None
    if not isinstance(last, dict) or last.get("role") != "tool":
        return None
    call_id = last.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        return None
    issued = await service.tool_calls.find(call_id)
    return issued.tier if issued is not None else None


def _remember_tool_calls(
    service: RouterService, message: JSON, tier: str, task: str
) -> None:
    """Note which tier issued each tool call in a message or stream delta."""
    for tool_call in message.get("tool_calls") or ():
        # In a stream only a call's first delta carries its id.
        call_id = tool_call.get("id") if isinstance(tool_call, dict) else None
        if isinstance(call_id, str) and call_id:
            service.tool_calls.remember(call_id, tier, task)


def _carries_tokens(chunk: JSON) -> bool:
    """Whether a stream chunk holds generated text or a tool call.

    The first chunk is often the role alone: the time to the first token is
    the time to the first chunk after it that says something.
    """
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls"):
            return True
    return False


def _fail(
    service: RouterService,
    rec: RequestRecord,
    exc: UpstreamError,
    sent: float,
    headers: dict[str, str],
) -> None:
    rec.status, rec.error = exc.status_code, exc.reason
    rec.upstream_ms = round((time.perf_counter() - sent) * 1000, 3)
    service.recorder.record(rec)
    # The decision was made: a failed answer still says what was chosen.
    exc.headers = {
        **headers,
        "x-router-routed-tier": rec.routed_tier,
        "x-router-fallbacks": str(rec.fallbacks),
        **exc.headers,
    }


def _too_large(limit: int) -> PayloadTooLarge:
    msg = f"Request body is larger than this router's limit of {limit} bytes."
    return PayloadTooLarge(msg, code="body_too_large")
