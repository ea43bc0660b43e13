"""Calling a tier's upstream, with retries and the tier's fallback chain.

For a turn routed to tier T, the chain is T followed by `tiers.T.fallback`
from the policy. Each tier in the chain is tried in turn:

- a retryable failure before the first byte (429, 5xx, timeout, connection
  error) is retried on the same tier up to `retries` times, after a jittered
  exponential backoff or the upstream's `Retry-After`, as long as the wait fits
  in the request's retry budget; then the next tier is tried (a fallback);
- an open circuit breaker skips the tier at once (a fallback, reason
  `circuit_open`);
- a tier whose daily budget is spent is skipped (reason `budget_exhausted`);
- a non-retryable failure (the upstream rejected the request as invalid) ends
  the chain: another tier would reject it too.

When every tier fails, the client gets the last failure's error, naming the
tiers tried. Once the first byte has reached the client nothing is retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from llm_router.errors import UpstreamError, UpstreamUnavailable
from llm_router.policy.schema import Policy, TierConfig
from llm_router.providers.base import JSON, Provider, UpstreamCall
from llm_router.reliability.breaker import Breakers
from llm_router.reliability.budgets import Budgets
from llm_router.telemetry.metrics import Metrics
from llm_router.telemetry.records import RequestRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")
Attempt = Callable[[Provider, UpstreamCall], Awaitable[T]]


class Dispatcher:
    """Runs one upstream attempt function along a tier's fallback chain."""

    def __init__(
        self,
        metrics: Metrics,
        breakers: Breakers,
        budgets: Budgets,
        *,
        retries: int,
        retry_budget_s: float,
        backoff_s: float,
        backoff_max_s: float = 2.0,
    ) -> None:
        self.metrics = metrics
        self.breakers = breakers
        self.budgets = budgets
        self.retries = retries
        self.retry_budget_s = retry_budget_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s

    async def run(
        self,
        policy: Policy,
        providers: dict[str, Provider],
        tier: str,
        body: JSON,
        attempt: Attempt[T],
        rec: RequestRecord,
    ) -> tuple[UpstreamCall, T]:
        """Run `attempt` on the first tier that answers; return that call and result."""
        started = time.monotonic()
        chain = (tier, *policy.tiers[tier].fallback)
        failure: UpstreamError | None = None
        previous = tier
        tried: list[str] = []
        for candidate in chain:
            config = policy.tiers[candidate]
            if tried:
                if config.daily_budget_usd and self.budgets.exhausted(
                    policy, candidate
                ):
                    continue
                self._count_fallback(rec, previous, candidate, failure)
                previous = candidate
            tried.append(candidate)
            call = build_call(config, candidate, body, rec.request_id)
            provider = providers[config.provider]
            try:
                return call, await self._try_tier(provider, call, attempt, started, rec)
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
                failure = exc

        assert failure is not None
        if len(tried) > 1:
            failure.message = f"{failure.message} Tried tiers: {', '.join(tried)}."
            failure.args = (failure.message,)
        raise failure

    async def _try_tier(
        self,
        provider: Provider,
        call: UpstreamCall,
        attempt: Attempt[T],
        started: float,
        rec: RequestRecord,
    ) -> T:
        breaker = self.breakers.get(call.tier, call.config.model)
        tries = 0
        while True:
            if not breaker.allow():
                wait = breaker.retry_after_s()
                msg = (
                    f"Tier {call.tier!r} (model {call.config.model!r}) is failing; "
                    f"its circuit breaker stays open for another {wait:.0f} s."
                )
                raise UpstreamUnavailable(
                    msg, retry_after=max(1.0, wait), code="circuit_open"
                )
            try:
                result = await attempt(provider, call)
            except UpstreamError as exc:
                if not exc.retryable:
                    breaker.release_probe()
                    raise
                breaker.record_failure()
                tries += 1
                wait = self._backoff(tries, exc.retry_after)
                spent = time.monotonic() - started
                if tries > self.retries or spent + wait > self.retry_budget_s:
                    raise
                logger.info(
                    "retrying tier %s in %.3f s after %s (request %s)",
                    call.tier,
                    wait,
                    exc.reason,
                    rec.request_id,
                )
                await asyncio.sleep(wait)
                continue
            except BaseException:
                breaker.release_probe()
                raise
            breaker.record_success()
            return result

    def _backoff(self, tries: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The upstream said when; a little jitter keeps clients from
            # returning in lockstep.
            return retry_after * random.uniform(1.0, 1.1)
        ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (tries - 1))
        return random.uniform(0, ceiling)

    def _count_fallback(
        self,
        rec: RequestRecord,
        from_tier: str,
        to_tier: str,
        failure: UpstreamError | None,
    ) -> None:
        reason = failure.reason if failure is not None else "budget_exhausted"
        rec.fallbacks += 1
        self.metrics.fallbacks.labels(from_tier, to_tier, reason).inc()
        logger.warning(
            "falling back from tier %s to %s after %s (request %s)",
            from_tier,
            to_tier,
            reason,
            rec.request_id,
        )


def build_call(
    config: TierConfig, tier: str, body: JSON, request_id: str
) -> UpstreamCall:
    """The call to one tier: the client's body with the tier's `max_tokens` cap."""
    if config.max_tokens is not None:
        body = cap_max_tokens(body, config.max_tokens)
    return UpstreamCall(tier=tier, config=config, body=body, request_id=request_id)


def cap_max_tokens(body: JSON, cap: int) -> JSON:
    """The body with `max_tokens` (or `max_completion_tokens`) capped at `cap`."""
    body = dict(body)
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if isinstance(value, int):
            body[key] = min(value, cap)
    if "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = cap
    return body
