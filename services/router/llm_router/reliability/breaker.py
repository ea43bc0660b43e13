"""Circuit breakers, one per upstream (tier and model).

    closed ──(N failures in a row)──> open ──(cool-down over)──> half-open
      ^                                 ^                            │
      └──────────(probe succeeds)───────┼────────────────────────────┤
                                        └──────(probe fails)─────────┘

While open, calls are refused without touching the upstream, so a dead model
costs each request nothing and the fallback tier answers at once. Half-open lets
exactly one probe through at a time.
"""

from __future__ import annotations

import logging
import time

from llm_router.telemetry.metrics import Metrics

logger = logging.getLogger(__name__)

CLOSED, HALF_OPEN, OPEN = 0, 1, 2
_STATE_NAMES = {CLOSED: "closed", HALF_OPEN: "half-open", OPEN: "open"}


class CircuitBreaker:
    """The breaker of one upstream; state is exported as `llm_router_circuit_state`."""

    __slots__ = (
        "_gauge",
        "failures",
        "model",
        "open_s",
        "opened_at",
        "probing",
        "state",
        "threshold",
        "tier",
    )

    def __init__(
        self,
        tier: str,
        model: str,
        metrics: Metrics,
        *,
        threshold: int,
        open_s: float,
    ) -> None:
        self.tier = tier
        self.model = model
        self.threshold = threshold
        self.open_s = open_s
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False
        self._gauge = metrics.circuit_state.labels(tier, model)
        self._gauge.set(CLOSED)

    def allow(self) -> bool:
        """Whether a call may go to the upstream now (claims the probe if half-open)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if time.monotonic() - self.opened_at < self.open_s:
                return False
            self._move(HALF_OPEN)
        if self.probing:
            return False
        self.probing = True
        return True

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a probe through."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self.open_s - (time.monotonic() - self.opened_at))

    def record_success(self) -> None:
        """The upstream answered: close the breaker."""
        self.failures = 0
        self.probing = False
        if self.state != CLOSED:
            self._move(CLOSED)

    def record_failure(self) -> None:
        """The upstream failed: open after `threshold` failures, or a failed probe."""
        self.failures += 1
        self.probing = False
        if self.state == HALF_OPEN or (
            self.state == CLOSED and self.failures >= self.threshold
        ):
            self.opened_at = time.monotonic()
            self._move(OPEN)

    def release_probe(self) -> None:
        """The probe ended without a verdict (e.g. the client went away)."""
        self.probing = False

    def _move(self, state: int) -> None:
        logger.warning(
            "circuit for tier %s model %s is now %s after %d failures",
            self.tier,
            self.model,
            _STATE_NAMES[state],
            self.failures,
        )
        self.state = state
        self._gauge.set(state)


class Breakers:
    """Every upstream's breaker, kept across policy reloads."""

    def __init__(self, metrics: Metrics, *, threshold: int, open_s: float) -> None:
        self.metrics = metrics
        self.threshold = threshold
        self.open_s = open_s
        self._by_upstream: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, tier: str, model: str) -> CircuitBreaker:
        """The breaker of one upstream, created closed on first use."""
        key = (tier, model)
        breaker = self._by_upstream.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                tier, model, self.metrics, threshold=self.threshold, open_s=self.open_s
            )
            self._by_upstream[key] = breaker
        return breaker
