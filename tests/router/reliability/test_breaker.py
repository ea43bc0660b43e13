"""The circuit breaker's state machine, on a clock the test moves."""

from __future__ import annotations

import pytest

from llm_router.reliability import breaker
from llm_router.reliability.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from llm_router.telemetry.metrics import Metrics


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(breaker.time, "monotonic", lambda: now[0])
    return now


def _opened(clock: list[float]) -> CircuitBreaker:
    circuit = CircuitBreaker("large", "m", Metrics(), threshold=2, open_s=5.0)
    circuit.record_failure()
    assert circuit.state == CLOSED, "one failure is not enough"
    circuit.record_failure()
    assert circuit.state == OPEN
    return circuit


def test_an_open_circuit_refuses_until_its_cool_down_ends(clock: list[float]) -> None:
    circuit = _opened(clock)

    clock[0] += 4.0
    assert not circuit.allow()
    assert circuit.retry_after_s() == pytest.approx(1.0)
    clock[0] += 1.0
    assert circuit.allow(), "the cool-down is over: one probe goes through"
    assert circuit.state == HALF_OPEN


def test_half_open_lets_one_probe_through_at_a_time(clock: list[float]) -> None:
    circuit = _opened(clock)
    clock[0] += 5.0

    assert circuit.allow()
    assert not circuit.allow(), "a second call waits while the probe is out"
    circuit.release_probe()
    assert circuit.allow(), "a probe that ended without a verdict frees the slot"


def test_a_failed_probe_opens_the_circuit_again_for_a_full_cool_down(
    clock: list[float],
) -> None:
    circuit = _opened(clock)
    clock[0] += 5.0
    assert circuit.allow()

    circuit.record_failure()

    assert circuit.state == OPEN
    assert circuit.retry_after_s() == pytest.approx(5.0)
    clock[0] += 4.9
    assert not circuit.allow()


def test_a_successful_probe_closes_the_circuit_and_forgets_failures(
    clock: list[float],
) -> None:
    circuit = _opened(clock)
    clock[0] += 5.0
    assert circuit.allow()

    circuit.record_success()
    circuit.record_failure()

    assert circuit.state == CLOSED, "the count of failures started again"
    assert circuit.allow()
