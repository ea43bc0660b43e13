"""CloudWatch Embedded Metric Format: one JSON line per request on stdout.

Lambda and ECS (awslogs) send stdout to CloudWatch Logs, which turns any line
carrying an `_aws.CloudWatchMetrics` directive into metrics; on EKS the log
agent (CloudWatch agent or Fluent Bit with the EMF parser) does the same. The
names below are a contract with the stacks' alarms and dashboards and are
documented in `docs/metrics.md`; a test keeps the two in step.

When EMF is on, the EMF line also carries the fields of the access log line,
so each request writes exactly one line: CloudWatch Logs ingestion is billed
per byte, and one line per request keeps a request's facts in one place for
Logs Insights.
"""

from __future__ import annotations

import logging
import string
import sys
import time
from typing import Final, TextIO

import orjson

from llm_router.errors import ConfigError
from llm_router.telemetry.records import RequestRecord

DEFAULT_NAMESPACE: Final = "LLMRouter"
DIMENSION_SETS: Final[tuple[tuple[str, ...], ...]] = (("Tier",), ("Tier", "Model"))

# Metric name -> CloudWatch unit. CostUSD has no currency unit in CloudWatch.
METRIC_UNITS: Final[dict[str, str]] = {
    "Requests": "Count",
    "Errors": "Count",
    "Fallbacks": "Count",
    "CacheHits": "Count",
    "InputTokens": "Count",
    "OutputTokens": "Count",
    "CostUSD": "None",
    "DecisionLatencyMs": "Milliseconds",
    "UpstreamLatencyMs": "Milliseconds",
}

# Latencies are declared only when they were measured: a zero would drag
# down the p95 that alarms and dashboards read.
_ALWAYS = [
    {"Name": name, "Unit": unit}
    for name, unit in METRIC_UNITS.items()
    if not name.endswith("LatencyMs")
]
_DECISION = {"Name": "DecisionLatencyMs", "Unit": "Milliseconds"}
_UPSTREAM = {"Name": "UpstreamLatencyMs", "Unit": "Milliseconds"}
_NONE = "none"
_NAMESPACE_CHARS = frozenset(string.ascii_letters + string.digits + " .-_/#:")

access_logger = logging.getLogger("llm_router.access")


class EMFWriter:
    """A request sink that writes one EMF line per request to stdout."""

    # The Recorder skips its own access line: this one carries its fields.
    carries_access_log = True

    def __init__(
        self, namespace: str = DEFAULT_NAMESPACE, stream: TextIO | None = None
    ) -> None:
        validate_namespace(namespace)
        self.namespace = namespace
        self._stream = stream
        dimensions = [list(dims) for dims in DIMENSION_SETS]
        self._directives = {
            (decided, called): [
                {
                    "Namespace": namespace,
                    "Dimensions": dimensions,
                    "Metrics": _ALWAYS
                    + ([_DECISION] if decided else [])
                    + ([_UPSTREAM] if called else []),
                }
            ]
            for decided in (False, True)
            for called in (False, True)
        }

    def __call__(self, rec: RequestRecord) -> None:
        """Write the record for one finished request."""
        line = self.render(
            rec, with_access_fields=access_logger.isEnabledFor(logging.INFO)
        )
        stream = self._stream or sys.stdout
        stream.write(line + "\n")
        # Lambda freezes the process between invocations: an unflushed line
        # could sit in the buffer until the next request, or be lost.
        stream.flush()

    def render(self, rec: RequestRecord, *, with_access_fields: bool = True) -> str:
        """The EMF JSON document for one request, as one line."""
        decided = rec.decision_ms > 0
        called = rec.upstream_ms > 0
        metrics = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": self._directives[decided, called],
            },
            "Tier": rec.tier or _NONE,
            "Model": rec.model or _NONE,
            "Requests": 1,
            "Errors": 1 if rec.error is not None or rec.status >= 400 else 0,
            "Fallbacks": rec.fallbacks,
            "CacheHits": 1 if rec.cache_hit else 0,
            "InputTokens": rec.input_tokens,
            "OutputTokens": rec.output_tokens,
            "CostUSD": rec.cost_usd,
        }
        if decided:
            metrics["DecisionLatencyMs"] = rec.decision_ms
        if called:
            metrics["UpstreamLatencyMs"] = rec.upstream_ms
        body = orjson.dumps(metrics)
        if not with_access_fields:
            return body.decode()

        # Splice the access fields (snake_case, so no key clashes with the
        # CamelCase EMF members) into the same object without a dict merge.
        access = orjson.dumps(rec)
        return (access[:-1] + b"," + body[1:]).decode()


def validate_namespace(namespace: str) -> None:
    """Reject a namespace CloudWatch would refuse, before the first request."""
    if (
        not 1 <= len(namespace) <= 255
        or not namespace.strip()
        or namespace.startswith("AWS/")
    ):
        msg = (
            f"EMF namespace {namespace!r} is not valid: use 1 to 255 characters "
            "that do not start with 'AWS/' (default 'LLMRouter')."
        )
        raise ConfigError(msg)
    bad = sorted(set(namespace) - _NAMESPACE_CHARS)
    if bad:
        msg = (
            f"EMF namespace {namespace!r} contains {bad[0]!r}; CloudWatch accepts "
            "letters, digits, spaces and . - _ / # : only."
        )
        raise ConfigError(msg)
