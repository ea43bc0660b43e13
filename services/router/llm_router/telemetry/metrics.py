"""Prometheus metrics: the one registry every dashboard and alert queries.

Names follow the OpenTelemetry GenAI conventions where one exists (token
usage by `type` input/output); everything else is prefixed `llm_router_`.
Grafana dashboards and alert rules are checked against `Metrics().names()`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DECISION_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5,
)  # fmt: skip
_UPSTREAM_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
)  # fmt: skip


class Metrics:
    """All router metrics, on a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "llm_router_requests",
            "Chat requests answered, by final tier, task, model and status.",
            ["tier", "task", "model", "status"],
            registry=r,
        )
        self.decision_seconds = Histogram(
            "llm_router_decision_seconds",
            "Time to classify a turn and apply the policy.",
            ["classifier"],
            buckets=_DECISION_BUCKETS,
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "llm_router_upstream_seconds",
            "Time from sending a request upstream to its last byte.",
            ["tier", "model"],
            buckets=_UPSTREAM_BUCKETS,
            registry=r,
        )
        self.time_to_first_token_seconds = Histogram(
            "llm_router_time_to_first_token_seconds",
            "Time from receiving a streamed request to its first content chunk.",
            ["tier", "model"],
            buckets=_UPSTREAM_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "llm_router_tokens",
            "Tokens reported by upstreams; type is input or output (GenAI).",
            ["tier", "model", "type"],
            registry=r,
        )
        self.cost_usd = Counter(
            "llm_router_cost_usd",
            "Spend in USD at the policy's prices.",
            ["tier", "model"],
            registry=r,
        )
        self.errors = Counter(
            "llm_router_errors",
            "Failed requests by tier and reason.",
            ["tier", "reason"],
            registry=r,
        )
        self.routes = Counter(
            "llm_router_routes",
            "Routing decisions by task and chosen tier (before any fallback).",
            ["task", "tier", "reason"],
            registry=r,
        )
        self.fallbacks = Counter(
            "llm_router_fallbacks",
            "Calls moved from one tier to another after an upstream failure.",
            ["from_tier", "to_tier", "reason"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "llm_router_cache_lookups",
            "Decision-cache lookups; result is hit, miss or error.",
            ["backend", "result"],
            registry=r,
        )
        self.classifier_fallbacks = Counter(
            "llm_router_classifier_fallbacks",
            "Turns classified in process because the remote classifier failed.",
            ["classifier", "reason"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "llm_router_circuit_state",
            "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open.",
            ["tier", "model"],
            registry=r,
        )
        self.budget_events = Counter(
            "llm_router_budget_events",
            "Turns affected by an exhausted daily tier budget; action is "
            "downgrade or reject.",
            ["tier", "action"],
            registry=r,
        )
        self.rate_limited = Counter(
            "llm_router_rate_limited",
            "Requests refused by per-key limits; limit is requests or tokens.",
            ["limit"],
            registry=r,
        )
        self.policy_reloads = Counter(
            "llm_router_policy_reloads",
            "Policy reload attempts; result is ok or error.",
            ["result"],
            registry=r,
        )
        self.feedback = Counter(
            "llm_router_feedback",
            "Feedback verdicts (too_weak, too_strong, ok) per tier.",
            ["tier", "verdict"],
            registry=r,
        )
        self.feedback_tasks = Counter(
            "llm_router_feedback_tasks",
            "Predicted task against the task reported in feedback.",
            ["predicted", "reported"],
            registry=r,
        )

    def names(self) -> set[str]:
        """Every sample name this registry exports (for dashboard checks)."""
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }
        return {
            family.name + suffix
            for family in self.registry.collect()
            for suffix in suffixes.get(family.type, ("",))
        }
