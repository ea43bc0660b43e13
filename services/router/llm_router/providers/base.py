"""The provider interface: one upstream kind (OpenAI-compatible, Bedrock, ...).

Providers speak OpenAI shapes on both sides: they take an OpenAI chat request
body and return an OpenAI completion body, or yield OpenAI chunk bodies. A
stream's token usage arrives in the chunk that carries a `usage` key, which
providers always yield last (Bedrock's comes from its final `metadata` event).
"""

from __future__ import annotations

import abc
import datetime
import email.utils
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from llm_router.errors import (
    UpstreamError,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
)
from llm_router.policy.schema import TierConfig, Timeouts

JSON = dict[str, Any]


@dataclass(slots=True)
class Usage:
    """Tokens reported by the upstream for one call."""

    input_tokens: int = 0
    output_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: JSON | None) -> Usage:
        """Read an OpenAI `usage` object; missing fields count as zero."""
        if not usage:
            return cls()
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        )

    def to_openai(self) -> JSON:
        """This usage as an OpenAI `usage` object."""
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(slots=True)
class UpstreamCall:
    """One call to one tier's model."""

    tier: str
    config: TierConfig
    body: JSON
    request_id: str = ""
    extra: JSON = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.config.invoke_target

    @property
    def timeouts(self) -> Timeouts:
        return self.config.timeouts


@dataclass(slots=True)
class Completion:
    """A non-streamed answer in OpenAI shape, with its usage."""

    body: JSON
    usage: Usage


class Provider(abc.ABC):
    """An upstream that answers chat requests."""

    kind: str = "provider"

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    async def complete(self, call: UpstreamCall) -> Completion:
        """Answer a non-streamed request."""

    @abc.abstractmethod
    def stream(self, call: UpstreamCall) -> AsyncIterator[JSON]:
        """Yield OpenAI chunks; the last one carries `usage`."""

    async def aclose(self) -> None:
        """Close pooled connections."""


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    model: str,
    retry_after: float | None = None,
) -> UpstreamError:
    """Translate an upstream HTTP status into the router's error."""
    where = f"Upstream {provider!r} (model {model!r})"
    if status == 429:
        return UpstreamThrottled(
            f"{where} is throttling requests (HTTP 429): {message}",
            upstream_status=status,
            retry_after=retry_after,
            code="upstream_throttled",
        )
    if status in (400, 413, 422):
        return UpstreamRejected(
            f"{where} rejected the request (HTTP {status}): {message}",
            upstream_status=status,
            code="upstream_rejected",
        )
    if status in (401, 403):
        return UpstreamUnavailable(
            f"{where} refused the router's credentials (HTTP {status}): {message}. "
            "Check the provider's api_key or IAM permissions.",
            upstream_status=status,
            code="upstream_auth",
        )
    return UpstreamUnavailable(
        f"{where} failed with HTTP {status}: {message}",
        upstream_status=status,
        retry_after=retry_after,
        code="upstream_error",
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header, in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())
