"""A local Bedrock runtime speaking the real wire protocol to the real client.

moto does not implement Converse, so this fake does: `POST
/model/{modelId}/converse` answers JSON and `POST
/model/{modelId}/converse-stream` answers AWS event-stream binary frames
(prelude, CRC32s, `:event-type` / `:message-type` headers). Errors carry the
status, `x-amzn-errortype` header and JSON `message` Bedrock sends, so
botocore raises the same exception codes it raises against AWS.

Usage::

    with run_fake_bedrock() as fake:          # uvicorn on 127.0.0.1:<port 0>
        fake.script(BedrockReply(text="hi"))  # next call answers this
        fake.fail("ThrottlingException")      # ...and the one after fails
        client = session.create_client("bedrock-runtime",
                                       endpoint_url=fake.url, ...)
        ...
        fake.requests[-1].body                # what the client sent

Calls take scripted replies in order; once the queue is empty every call gets
`fake.default`. A reply may also be a function of the received request.
Requests must be SigV4-signed for service `bedrock` (any key works): an
unsigned one is answered like AWS would, with a 403.

The API other tests build on:

- `run_fake_bedrock(default=None)`: context manager yielding a `FakeBedrock`
  whose `url` is the loopback endpoint (`FakeBedrock().app` is the bare ASGI
  app, to serve some other way);
- `FakeBedrock.script(*replies)`, `.fail(code, message, times)`,
  `.throttle(times)`, `.reset()`, `.default`, `.requests` (`ReceivedRequest`:
  operation, model_id, region from the SigV4 scope, body, headers) and
  `.require_reasoning_before_tool_use` (Claude's thinking-block rule);
- `BedrockReply`: text, tool uses, reasoning, stop reason, token counts,
  an error instead of a result, a mid-stream exception event, pacing;
- `use_fake_aws_credentials(monkeypatch)` / `fake_aws_environment()`: dummy
  credentials and no AWS config files for botocore;
- `encode_event`, `encode_converse_event`, `encode_exception_event`: raw
  event-stream frames, for tests that need a malformed or custom stream.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import itertools
import re
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from helpers import serve

# Bedrock's HTTP status for each error it documents for Converse.
ERROR_STATUS: dict[str, int] = {
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
    "UnrecognizedClientException": 403,
}
# Exceptions ConverseStream can send as events once the stream has started.
STREAM_EXCEPTIONS = (
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "serviceUnavailableException",
)
_SIGNATURE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/bedrock/"
    r"aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$"
)
_STRING_HEADER = 7


@dataclass
class ToolUse:
    """A tool call the fake model makes."""

    name: str
    input: dict[str, Any]
    tool_use_id: str = "tooluse_fake_1"


@dataclass
class BedrockReply:
    """One scripted answer.

    `error`: answer with this Bedrock exception (e.g. "ThrottlingException")
    instead of a result. `stream_error`: in a stream, send this exception event
    (e.g. "modelStreamErrorException") after `stream_error_after` text deltas.
    `delay_s` delays the first byte; `chunk_delay_s` paces stream events.
    `reasoning` adds a signed reasoning block before the text.
    """

    text: str = "Hello from the fake Bedrock runtime."
    tool_uses: list[ToolUse] = field(default_factory=list)
    reasoning: str = ""
    reasoning_signature: str = "c2lnbmVkLWJ5LXRoZS1mYWtl"
    stop_reason: str | None = None
    input_tokens: int = 13
    output_tokens: int = 9
    cache_read_tokens: int = 0
    error: str | None = None
    message: str | None = None
    stream_error: str | None = None
    stream_error_after: int = 1
    omit_metadata: bool = False
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    words_per_delta: int = 2

    @property
    def finish(self) -> str:
        """The stop reason Bedrock reports for this reply."""
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if self.tool_uses else "end_turn"


Reply = BedrockReply | Callable[["ReceivedRequest"], BedrockReply]


@dataclass
class ReceivedRequest:
    """One request as the fake received it."""

    operation: str  # "converse" or "converse-stream"
    model_id: str
    region: str
    body: dict[str, Any]
    headers: dict[str, str]


class FakeBedrock:
    """Scripted Bedrock runtime state; `app` serves it over HTTP."""

    def __init__(self, default: BedrockReply | None = None) -> None:
        self.default = default or BedrockReply()
        self.requests: list[ReceivedRequest] = []
        self.url = ""
        # Like Claude with thinking on: an assistant turn that called a tool
        # must come back with its signed reasoning block first.
        self.require_reasoning_before_tool_use = False
        self._queue: deque[Reply] = deque()
        self.app = Starlette(
            routes=[
                Route(
                    "/model/{model_id:path}/converse-stream",
                    self._converse_stream,
                    methods=["POST"],
                ),
                Route(
                    "/model/{model_id:path}/converse",
                    self._converse,
                    methods=["POST"],
                ),
            ]
        )

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next calls, in order."""
        self._queue.extend(replies)

    def fail(self, error: str, message: str | None = None, times: int = 1) -> None:
        """Make the next `times` calls fail with a Bedrock exception."""
        for _ in range(times):
            self._queue.append(BedrockReply(error=error, message=message))

    def throttle(self, times: int = 1) -> None:
        """Make the next `times` calls fail with ThrottlingException."""
        self.fail("ThrottlingException", "Too many requests, please wait.", times)

    def reset(self) -> None:
        """Forget scripted replies, received requests and optional checks."""
        self._queue.clear()
        self.requests.clear()
        self.require_reasoning_before_tool_use = False

    async def _converse(self, request: Request) -> Response:
        received, reply, refusal = await self._receive(request, "converse")
        if refusal is not None:
            return refusal
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.error:
            return error_response(reply.error, reply.message, received.model_id)
        content: list[dict[str, Any]] = []
        if reply.reasoning:
            reasoning = {
                "reasoningText": {
                    "text": reply.reasoning,
                    "signature": reply.reasoning_signature,
                }
            }
            content.append({"reasoningContent": reasoning})
        if reply.text:
            content.append({"text": reply.text})
        content.extend(
            {
                "toolUse": {
                    "toolUseId": tool.tool_use_id,
                    "name": tool.name,
                    "input": tool.input,
                }
            }
            for tool in reply.tool_uses
        )
        body = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": reply.finish,
            "usage": _usage(reply),
            "metrics": {"latencyMs": 42},
        }
        return Response(
            orjson.dumps(body),
            media_type="application/json",
            headers={"x-amzn-requestid": "fake-request-id"},
        )

    async def _converse_stream(self, request: Request) -> Response:
        received, reply, refusal = await self._receive(request, "converse-stream")
        if refusal is not None:
            return refusal
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.error:
            return error_response(reply.error, reply.message, received.model_id)
        return StreamingResponse(
            _stream_events(reply),
            media_type="application/vnd.amazon.eventstream",
            headers={"x-amzn-requestid": "fake-request-id"},
        )

    async def _receive(
        self, request: Request, operation: str
    ) -> tuple[ReceivedRequest, BedrockReply, Response | None]:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        encoded = raw_path.decode().split("/model/", 1)[1].rsplit("/", 1)[0]
        model_id = unquote(encoded)
        match = _SIGNATURE.match(request.headers.get("authorization", ""))
        body = orjson.loads(await request.body() or b"{}")
        received = ReceivedRequest(
            operation=operation,
            model_id=model_id,
            region=match.group("region") if match else "",
            body=body,
            headers=dict(request.headers),
        )
        self.requests.append(received)
        if match is None:
            refusal = error_response(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                model_id,
            )
            return received, BedrockReply(), refusal
        invalid = validate_converse_body(body)
        if invalid is None and self.require_reasoning_before_tool_use:
            invalid = _check_reasoning_kept(body)
        if invalid is not None:
            return (
                received,
                BedrockReply(),
                error_response("ValidationException", invalid, model_id),
            )
        queued = self._queue.popleft() if self._queue else self.default
        reply = queued if isinstance(queued, BedrockReply) else queued(received)
        return received, reply, None


@contextlib.contextmanager
def run_fake_bedrock(default: BedrockReply | None = None) -> Iterator[FakeBedrock]:
    """Serve a `FakeBedrock` under real uvicorn on 127.0.0.1, port 0."""
    fake = FakeBedrock(default)
    with serve(fake.app) as url:
        fake.url = url
        yield fake


def fake_aws_environment() -> dict[str, str]:
    """Environment variables that give botocore dummy credentials and no files."""
    return {
        "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0000",
        "AWS_SECRET_ACCESS_KEY": "fake-secret-key-for-loopback-tests",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


# Set, even empty, these would override the dummy keys (a Bedrock API key
# switches botocore to bearer auth), so tests remove them.
AWS_VARIABLES_TO_UNSET = (
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


def use_fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point botocore at dummy credentials for the rest of a test."""
    for name in AWS_VARIABLES_TO_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_aws_environment().items():
        monkeypatch.setenv(name, value)


def error_response(code: str, message: str | None, model_id: str) -> Response:
    """An error answered the way Bedrock answers it (status, header, body)."""
    text = message or _default_message(code, model_id)
    return Response(
        orjson.dumps({"message": text}),
        status_code=ERROR_STATUS.get(code, 400),
        media_type="application/json",
        headers={
            "x-amzn-errortype": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            "x-amzn-requestid": "fake-request-id",
        },
    )


def validate_converse_body(body: dict[str, Any]) -> str | None:
    """The ValidationException message Bedrock gives this body, if any."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "A conversation must start with a user message."
    if messages[0].get("role") != "user":
        return (
            "A conversation must start with a user message. Try again with a "
            "conversation that starts with a user message."
        )
    for previous, current in itertools.pairwise(messages):
        if previous.get("role") == current.get("role"):
            return (
                "A conversation must alternate between user and assistant roles. "
                "Make sure the conversation alternates between user and "
                "assistant roles and try again."
            )
    for index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list) or not content:
            return (
                f"The content field in the Message object at messages.{index} "
                "is empty. Add a ContentBlock object to the content field and "
                "try again."
            )
        for block in content:
            if "text" in block and not str(block["text"]).strip():
                return (
                    "The text field in the ContentBlock object at "
                    f"messages.{index}.content.0 is blank. Add text to the text "
                    "field, and try again."
                )
    uses_tools = any(
        "toolUse" in block or "toolResult" in block
        for message in messages
        for block in message["content"]
    )
    if uses_tools and "toolConfig" not in body:
        return (
            "The toolConfig field must be defined when using toolUse and "
            "toolResult content blocks."
        )
    config = body.get("inferenceConfig") or {}
    max_tokens = config.get("maxTokens")
    if max_tokens is not None and max_tokens < 1:
        return (
            f"1 validation error detected: Value '{max_tokens}' at "
            "'inferenceConfig.maxTokens' failed to satisfy constraint: Member "
            "must have value greater than or equal to 1"
        )
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: range: 0..1"
    return None


def encode_event(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, CRCs, string headers, payload."""
    encoded = b""
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        encoded += struct.pack("!B", len(name_bytes)) + name_bytes
        encoded += struct.pack("!BH", _STRING_HEADER, len(value_bytes)) + value_bytes
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def encode_converse_event(event_type: str, payload: dict[str, Any]) -> bytes:
    """A ConverseStream event frame (e.g. `contentBlockDelta`)."""
    # Bedrock pads events with a `p` field to hide their length; so does this.
    body = orjson.dumps({**payload, "p": "abcdefgh"[: len(event_type) % 8]})
    return encode_event(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        body,
    )


def encode_exception_event(exception_type: str, message: str) -> bytes:
    """A ConverseStream exception frame (e.g. `throttlingException`)."""
    return encode_event(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        orjson.dumps({"message": message}),
    )


async def _stream_events(reply: BedrockReply) -> AsyncIterator[bytes]:
    yield encode_converse_event("messageStart", {"role": "assistant"})
    index = 0
    if reply.reasoning:
        for piece in (reply.reasoning[:3], reply.reasoning[3:]):
            delta = {"reasoningContent": {"text": piece}}
            yield encode_converse_event(
                "contentBlockDelta", {"contentBlockIndex": index, "delta": delta}
            )
        signature = {"reasoningContent": {"signature": reply.reasoning_signature}}
        yield encode_converse_event(
            "contentBlockDelta", {"contentBlockIndex": index, "delta": signature}
        )
        yield encode_converse_event("contentBlockStop", {"contentBlockIndex": index})
        index += 1
    words = reply.text.split(" ") if reply.text else []
    step = max(1, reply.words_per_delta)
    pieces = [
        " ".join(words[i : i + step]) + (" " if i + step < len(words) else "")
        for i in range(0, len(words), step)
    ]
    for sent, piece in enumerate(pieces):
        if reply.stream_error and sent == reply.stream_error_after:
            yield encode_exception_event(
                reply.stream_error, reply.message or "The model failed mid-stream."
            )
            return
        if reply.chunk_delay_s:
            await asyncio.sleep(reply.chunk_delay_s)
        delta = {"contentBlockIndex": index, "delta": {"text": piece}}
        yield encode_converse_event("contentBlockDelta", delta)
    if pieces:
        yield encode_converse_event("contentBlockStop", {"contentBlockIndex": index})
        index += 1
    for tool in reply.tool_uses:
        start = {"toolUse": {"toolUseId": tool.tool_use_id, "name": tool.name}}
        yield encode_converse_event(
            "contentBlockStart", {"contentBlockIndex": index, "start": start}
        )
        arguments = orjson.dumps(tool.input).decode()
        middle = len(arguments) // 2
        for part in (arguments[:middle], arguments[middle:]):
            yield encode_converse_event(
                "contentBlockDelta",
                {"contentBlockIndex": index, "delta": {"toolUse": {"input": part}}},
            )
        yield encode_converse_event("contentBlockStop", {"contentBlockIndex": index})
        index += 1
    if reply.stream_error and reply.stream_error_after >= len(pieces):
        yield encode_exception_event(
            reply.stream_error, reply.message or "The model failed mid-stream."
        )
        return
    yield encode_converse_event("messageStop", {"stopReason": reply.finish})
    if not reply.omit_metadata:
        metadata = {"usage": _usage(reply), "metrics": {"latencyMs": 42}}
        yield encode_converse_event("metadata", metadata)


def _check_reasoning_kept(body: dict[str, Any]) -> str | None:
    for index, message in enumerate(body["messages"]):
        blocks = message["content"]
        if message["role"] != "assistant" or not any("toolUse" in b for b in blocks):
            continue
        first = blocks[0].get("reasoningContent", {}).get("reasoningText", {})
        if not first.get("signature"):
            return (
                f"messages.{index}.content.0.type: Expected `thinking` or "
                "`redacted_thinking`, but found `tool_use`. When `thinking` is "
                "enabled, a final `assistant` message must start with a thinking "
                "block."
            )
    return None


def _usage(reply: BedrockReply) -> dict[str, int]:
    usage = {
        "inputTokens": reply.input_tokens,
        "outputTokens": reply.output_tokens,
        "totalTokens": reply.input_tokens
        + reply.output_tokens
        + reply.cache_read_tokens,
    }
    if reply.cache_read_tokens:
        usage["cacheReadInputTokens"] = reply.cache_read_tokens
    return usage


def _default_message(code: str, model_id: str) -> str:
    messages = {
        "AccessDeniedException": (
            "You don't have access to the model with the specified model ID."
        ),
        "ResourceNotFoundException": (
            "Could not resolve the foundation model from the provided model "
            f"identifier {model_id}."
        ),
        "ThrottlingException": "Too many requests, please wait before trying again.",
        "ValidationException": "The provided request is not valid.",
        "ModelTimeoutException": "Model has timed out in processing the request.",
        "ModelNotReadyException": "Model is not ready to serve inference requests.",
        "InternalServerException": "The server encountered an internal error.",
        "ServiceUnavailableException": "The service is unavailable. Try again later.",
    }
    return messages.get(code, f"{code} raised by the fake Bedrock runtime.")
