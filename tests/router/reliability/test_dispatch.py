"""The dispatcher's rules, with in-process providers that fail on command."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from llm_router.errors import (
    UpstreamError,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
)
from llm_router.policy.loader import parse_policy
from llm_router.policy.schema import Policy
from llm_router.providers.base import JSON, Completion, Provider, UpstreamCall, Usage
from llm_router.reliability.breaker import Breakers
from llm_router.reliability.budgets import Budgets
from llm_router.reliability.dispatch import Dispatcher, cap_max_tokens
from llm_router.telemetry.metrics import Metrics
from llm_router.telemetry.records import RequestRecord


class ScriptedProvider(Provider):
    """Raises the queued errors in order, then answers."""

    def __init__(self, name: str, errors: list[UpstreamError]) -> None:
        super().__init__(name)
        self.errors = errors
        self.calls: list[UpstreamCall] = []

    async def complete(self, call: UpstreamCall) -> Completion:
        self.calls.append(call)
        if self.errors:
            raise self.errors.pop(0)
        return Completion(body={"choices": []}, usage=Usage())

    async def stream(self, call: UpstreamCall) -> AsyncIterator[JSON]:
        yield {}


def policy(large_extra: str = "", medium_extra: str = "") -> Policy:
    return parse_policy(
        "providers:\n  a:\n    type: simulated\n  b:\n    type: simulated\n"
        "  c:\n    type: simulated\n"
        "tiers:\n"
        "  small:\n    provider: c\n    model: m-small\n"
        "    input_usd_per_million: 1\n    output_usd_per_million: 1\n"
        "  medium:\n    provider: b\n    model: m-medium\n"
        "    input_usd_per_million: 1\n    output_usd_per_million: 1\n"
        f"    max_tokens: 100\n{medium_extra}"
        "  large:\n    provider: a\n    model: m-large\n"
        "    input_usd_per_million: 1\n    output_usd_per_million: 1\n"
        f"    fallback: [medium, small]\n{large_extra}"
    )


def dispatcher(budgets: Budgets | None = None, **overrides: float) -> Dispatcher:
    metrics = Metrics()
    values = {"retries": 1, "retry_budget_s": 5.0, "backoff_s": 0.001}
    values.update(overrides)
    return Dispatcher(
        metrics,
        Breakers(metrics, threshold=5, open_s=30),
        budgets or Budgets(metrics),
        retries=int(values["retries"]),
        retry_budget_s=values["retry_budget_s"],
        backoff_s=values["backoff_s"],
    )


async def complete(provider: Provider, call: UpstreamCall) -> Completion:
    return await provider.complete(call)


def calls(providers: dict[str, Provider], name: str) -> list[UpstreamCall]:
    provider = providers[name]
    assert isinstance(provider, ScriptedProvider)
    return provider.calls


def unavailable() -> UpstreamUnavailable:
    return UpstreamUnavailable("down", upstream_status=503)


async def test_a_fallback_tier_with_a_spent_budget_is_skipped() -> None:
    rules = policy(medium_extra="    daily_budget_usd: 1\n")
    metrics = Metrics()
    budgets = Budgets(metrics)
    budgets._local["medium"] = 1.0
    providers: dict[str, Provider] = {
        "a": ScriptedProvider("a", [unavailable(), unavailable()]),
        "b": ScriptedProvider("b", []),
        "c": ScriptedProvider("c", []),
    }
    rec = RequestRecord(request_id="r1")

    call, _ = await dispatcher(budgets).run(
        rules, providers, "large", {"messages": []}, complete, rec
    )

    assert call.tier == "small"
    assert calls(providers, "b") == []
    assert rec.fallbacks == 1


async def test_a_fallback_call_uses_the_client_body_with_its_own_cap() -> None:
    providers: dict[str, Provider] = {
        "a": ScriptedProvider("a", [unavailable(), unavailable()]),
        "b": ScriptedProvider("b", []),
        "c": ScriptedProvider("c", []),
    }
    body = {"messages": [], "max_tokens": 500}

    call, _ = await dispatcher().run(
        policy(), providers, "large", body, complete, RequestRecord(request_id="r")
    )

    assert call.tier == "medium"
    assert call.body["max_tokens"] == 100
    assert body["max_tokens"] == 500, "the client's body is not modified"


async def test_retries_stop_at_the_retry_budget() -> None:
    throttled = [
        UpstreamThrottled("slow down", upstream_status=429, retry_after=0.3)
        for _ in range(5)
    ]
    providers: dict[str, Provider] = {
        "a": ScriptedProvider("a", throttled),
        "b": ScriptedProvider("b", []),
        "c": ScriptedProvider("c", []),
    }
    started = time.monotonic()

    call, _ = await dispatcher(retries=5, retry_budget_s=0.5).run(
        policy(), providers, "large", {}, complete, RequestRecord(request_id="r")
    )

    assert call.tier == "medium"
    assert len(calls(providers, "a")) == 2
    assert time.monotonic() - started < 0.8


async def test_a_rejected_request_ends_the_chain() -> None:
    providers: dict[str, Provider] = {
        "a": ScriptedProvider("a", [UpstreamRejected("bad", upstream_status=400)]),
        "b": ScriptedProvider("b", []),
        "c": ScriptedProvider("c", []),
    }

    with pytest.raises(UpstreamRejected):
        await dispatcher().run(
            policy(), providers, "large", {}, complete, RequestRecord(request_id="r")
        )
    assert calls(providers, "b") == []


def test_backoff_is_jittered_and_capped() -> None:
    chosen = dispatcher(backoff_s=0.1)
    waits = [chosen._backoff(tries, None) for tries in (1, 2, 10) for _ in range(50)]

    assert all(0 <= w <= 2.0 for w in waits)
    assert len(set(waits)) > 100, "jitter spreads the waits"
    assert 3.0 <= chosen._backoff(1, 3.0) <= 3.3


def test_cap_max_tokens_caps_either_field_or_adds_one() -> None:
    assert cap_max_tokens({"max_tokens": 900}, 100) == {"max_tokens": 100}
    assert cap_max_tokens({"max_completion_tokens": 50}, 100) == {
        "max_completion_tokens": 50
    }
    assert cap_max_tokens({}, 100) == {"max_tokens": 100}
