"""The router: turn a chat request into a decision."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson

from llm_router.cache.base import DecisionCache, cache_key
from llm_router.cache.guard import CacheUnavailable
from llm_router.classifiers.base import Classification, Classifier, Turn
from llm_router.errors import NotFound
from llm_router.policy.loader import policy_digest
from llm_router.policy.schema import Policy
from llm_router.routing.decision import Decision, choose_tier
from llm_router.routing.turns import extract_turn
from llm_router.telemetry.metrics import Metrics

logger = logging.getLogger(__name__)

AUTO = "auto"


class Router:
    """Classifies turns (through the decision cache) and applies the policy."""

    def __init__(
        self,
        policy: Policy,
        classifier: Classifier,
        metrics: Metrics,
        *,
        cache: DecisionCache | None = None,
        cache_ttl_s: int = 3600,
    ) -> None:
        self.classifier = classifier
        self.metrics = metrics
        self.cache = cache
        self.cache_ttl_s = cache_ttl_s
        self.policy = policy
        self.policy_version = policy_digest(policy)

    def use_policy(self, policy: Policy) -> None:
        """Switch to a new policy; cached decisions of the old one stop matching."""
        self.policy = policy
        self.policy_version = policy_digest(policy)

    def resolve_model(self, requested: str) -> str | None:
        """The tier a request's `model` forces, None for `auto`; 404 if unknown."""
        if requested == AUTO:
            return None
        policy = self.policy
        if requested in policy.tiers:
            return requested
        tier = policy.tier_for_model(requested)
        if tier is not None:
            return tier
        accepted = [AUTO, *policy.tiers, *(t.model for t in policy.tiers.values())]
        msg = (
            f"Unknown model {requested!r}. Use 'auto' to let the router choose, "
            f"a tier, or a configured model: {', '.join(accepted)}."
        )
        raise NotFound(msg, param="model", code="model_not_found")

    async def decide(
        self,
        messages: Sequence[dict[str, Any]],
        requested: str = AUTO,
        *,
        issued_by: str | None = None,
    ) -> Decision:
        """Classify the latest turn and choose its tier.

        `issued_by` is the tier that answered with the tool call this turn
        carries the result of: an `auto` request goes back to it while the
        policy still has it.
        """
        started = time.perf_counter()
        forced = self.resolve_model(requested)
        turn = extract_turn(messages)
        result, cache_hit = await self._classify(turn)

        policy = self.policy
        if forced is not None:
            tier, reason = forced, f"model {requested!r} forces tier {forced}"
        elif issued_by is not None and issued_by in policy.tiers:
            tier = issued_by
            reason = f"tool result: back to tier {tier}, which issued the call"
        else:
            tier, reason = choose_tier(policy, result)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.metrics.decision_seconds.labels(self.classifier.name).observe(
            elapsed_ms / 1000
        )
        self.metrics.routes.labels(
            result.task, tier, "forced" if forced else "auto"
        ).inc()
        return Decision(
            tier=tier,
            model=policy.tiers[tier].model,
            task=result.task,
            confidence=result.confidence,
            complexity=result.complexity,
            reason=reason,
            classifier=self.classifier.name,
            top_tasks=result.top_tasks(3),
            decision_ms=elapsed_ms,
            cache_hit=cache_hit,
            forced=forced is not None,
        )

    async def _classify(self, turn: Turn) -> tuple[Classification, bool]:
        cache = self.cache
        if cache is None:
            return await self.classifier.aclassify(turn), False

        key = cache_key(
            turn, policy_version=self.policy_version, classifier=self.classifier.name
        )
        try:
            stored = await cache.get(key)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail routing
            self._count_cache_error(cache, "get", exc)
            return await self.classifier.aclassify(turn), False
        if stored is not None:
            self.metrics.cache_lookups.labels(cache.backend, "hit").inc()
            return _decode(stored), True

        self.metrics.cache_lookups.labels(cache.backend, "miss").inc()
        result = await self.classifier.aclassify(turn)
        try:
            await cache.set(key, _encode(result), self.cache_ttl_s)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not fail routing
            self._count_cache_error(cache, "set", exc)
        return result, False

    def _count_cache_error(
        self, cache: DecisionCache, operation: str, exc: Exception
    ) -> None:
        self.metrics.cache_lookups.labels(cache.backend, "error").inc()
        # While a backend is paused after a failure, every request would say so
        # again; the guard already logged the failure that started the pause.
        log = logger.debug if isinstance(exc, CacheUnavailable) else logger.warning
        log(
            "decision cache %s %s failed (%s); routing without it",
            cache.backend,
            operation,
            type(exc).__name__,
        )


def _encode(result: Classification) -> bytes:
    return orjson.dumps([result.complexity, *result.probabilities])


def _decode(raw: bytes) -> Classification:
    values = orjson.loads(raw)
    return Classification(probabilities=tuple(values[1:]), complexity=values[0])
