"""The canonical per-request record, and the sinks it fans out to.

One `RequestRecord` is built per routed request. It feeds the Prometheus
metrics, the JSON log line and (when enabled) the CloudWatch EMF record, so
the three can never disagree. It holds no prompt and no completion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from llm_router.telemetry.metrics import Metrics

access_logger = logging.getLogger("llm_router.access")


@dataclass(slots=True)
class RequestRecord:
    """What happened to one request; never its content."""

    request_id: str
    status: int = 200
    endpoint: str = "chat"
    stream: bool = False
    tier: str = ""
    routed_tier: str = ""
    task: str = ""
    complexity: float = 0.0
    confidence: float = 0.0
    model: str = ""
    provider: str = ""
    classifier: str = ""
    reason: str = ""
    decision_ms: float = 0.0
    upstream_ms: float = 0.0
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False
    fallbacks: int = 0
    error: str | None = None
    api_key_id: str | None = None


Sink = Callable[[RequestRecord], None]


class Recorder:
    """Fans each finished request out to metrics, the log line and extra sinks."""

    def __init__(self, metrics: Metrics, sinks: tuple[Sink, ...] = ()) -> None:
        self.metrics = metrics
        self.sinks = sinks
        # A sink that writes the access fields itself (the EMF writer) replaces
        # the access line, so each request still logs exactly one line.
        self.log_access = not any(
            getattr(sink, "carries_access_log", False) for sink in sinks
        )

    def record(self, rec: RequestRecord) -> None:
        """Account one finished request everywhere."""
        m = self.metrics
        tier, model = rec.tier or "none", rec.model or "none"
        status = "ok" if rec.status < 400 else "error"
        m.requests.labels(tier, rec.task or "none", model, status).inc()
        if rec.error:
            m.errors.labels(tier, rec.error).inc()
        if rec.upstream_ms:
            m.upstream_seconds.labels(tier, model).observe(rec.upstream_ms / 1000)
        if rec.ttft_ms is not None:
            m.time_to_first_token_seconds.labels(tier, model).observe(
                rec.ttft_ms / 1000
            )
        if rec.input_tokens or rec.output_tokens:
            m.tokens.labels(tier, model, "input").inc(rec.input_tokens)
            m.tokens.labels(tier, model, "output").inc(rec.output_tokens)
            m.cost_usd.labels(tier, model).inc(rec.cost_usd)
        if self.log_access and access_logger.isEnabledFor(logging.INFO):
            access_logger.info("%s", _LazyJSON(rec))
        for sink in self.sinks:
            sink(rec)


class _LazyJSON:
    """Serialises the record only if a handler actually formats the line."""

    __slots__ = ("rec",)

    def __init__(self, rec: RequestRecord) -> None:
        self.rec = rec

    def __str__(self) -> str:
        # orjson serialises the dataclass natively, in field order: the same
        # line as `asdict` gives, ~10x cheaper (docs/benchmarks.md).
        return orjson.dumps(self.rec).decode()
