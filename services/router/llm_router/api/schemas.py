"""Request bodies the router validates (OpenAI chat, route, feedback).

Only the fields the router reads are declared; everything else a client sends
(temperature, tools, response_format, ...) passes through to the upstream.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool


class ContentPart(BaseModel):
    """One part of an array `content` (text, image_url, input_audio, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    """OpenAI `stream_options`."""

    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat-completions request, as far as the router reads it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(
        description="`auto`, a tier name, or a configured model id.",
        min_length=1,
    )
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    # Bounded so the schema says what the parser accepts (no 4,000-digit ints).
    max_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)


class RouteRequest(BaseModel):
    """`POST /v1/route`: the chat request's `model` and `messages`."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(default="auto", min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)


class FeedbackRequest(BaseModel):
    """`POST /v1/feedback`: how a recent routed request went."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128)
    verdict: Literal["too_weak", "too_strong", "ok"]
    task: str | None = None


def dump_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Messages as plain dicts, the shape the routing code reads."""
    return [m.model_dump(exclude_none=True) for m in messages]
