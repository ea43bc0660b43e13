"""The router's CloudWatch EMF contract, as the alarms and dashboards read it.

The names come from the router itself (`llm_router.telemetry.emf`), so a metric
renamed there breaks the stack's tests instead of silently orphaning an alarm.
"""

from __future__ import annotations

from typing import Final

from llm_router.telemetry.emf import DEFAULT_NAMESPACE, DIMENSION_SETS, METRIC_UNITS

NAMESPACE: Final = DEFAULT_NAMESPACE
TIER_DIMENSION: Final = "Tier"
MODEL_DIMENSION: Final = "Model"

INPUT_TOKENS: Final = "InputTokens"
OUTPUT_TOKENS: Final = "OutputTokens"
COST_USD: Final = "CostUSD"
REQUESTS: Final = "Requests"
ERRORS: Final = "Errors"
FALLBACKS: Final = "Fallbacks"
DECISION_LATENCY_MS: Final = "DecisionLatencyMs"
UPSTREAM_LATENCY_MS: Final = "UpstreamLatencyMs"
CACHE_HITS: Final = "CacheHits"

METRIC_NAMES: Final[tuple[str, ...]] = (
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    COST_USD,
    REQUESTS,
    ERRORS,
    FALLBACKS,
    DECISION_LATENCY_MS,
    UPSTREAM_LATENCY_MS,
    CACHE_HITS,
)

# Bedrock's own metrics, used for throttle and server-error alarms.
BEDROCK_NAMESPACE: Final = "AWS/Bedrock"
BEDROCK_THROTTLES: Final = "InvocationThrottles"
BEDROCK_SERVER_ERRORS: Final = "InvocationServerErrors"


def check_contract() -> None:
    """Fail if the router no longer emits a metric or dimension set used here."""
    missing = sorted(set(METRIC_NAMES) - set(METRIC_UNITS))
    if missing:
        msg = (
            f"The router no longer emits {missing} (llm_router.telemetry.emf); "
            "update infra/metrics.py and the alarms that use them."
        )
        raise RuntimeError(msg)
    if (TIER_DIMENSION,) not in DIMENSION_SETS:
        msg = f"The router no longer emits the [{TIER_DIMENSION}] dimension set."
        raise RuntimeError(msg)
