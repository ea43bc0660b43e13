"""Daily tier budgets: downgrade or reject, with spend in memory, Redis or DynamoDB."""

from __future__ import annotations

from pathlib import Path

import boto3
import httpx
import pytest

from helpers import RedisServer, make_settings, serve_router, write_policy
from llm_router.errors import RateLimited
from llm_router.policy.loader import parse_policy
from llm_router.reliability.budgets import Budgets, DynamoDBSpend
from llm_router.service import RouterService, build_budgets
from llm_router.telemetry.metrics import Metrics

LARGE = {"model": "large", "messages": [{"role": "user", "content": "hi"}]}


def budget_policy(large: str, small: str = "") -> str:
    """The embedded tiers with a budget on large (and optionally small)."""
    return (
        "version: 1\nname: budgets\nproviders:\n  sim:\n    type: simulated\n"
        "tiers:\n"
        "  small:\n    provider: sim\n    model: sim-small\n"
        "    input_usd_per_million: 1\n    output_usd_per_million: 1\n"
        f"{small}"
        "  medium:\n    provider: sim\n    model: sim-medium\n"
        "    input_usd_per_million: 1\n    output_usd_per_million: 1\n"
        "  large:\n    provider: sim\n    model: sim-large\n"
        "    input_usd_per_million: 1000\n    output_usd_per_million: 1000\n"
        f"{large}"
    )


def events(service: RouterService, tier: str, action: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "llm_router_budget_events_total", {"tier": tier, "action": action}
    )
    return 0.0 if value is None else value


def test_an_exhausted_downgrade_tier_sends_turns_one_tier_cheaper(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = budget_policy("    daily_budget_usd: 0.01\n")
    with serve_router(write_policy(tmp_path, text)) as (url, service):
        first = httpx.post(url + "/v1/chat/completions", json=LARGE)
        second = httpx.post(url + "/v1/chat/completions", json=LARGE)
        count = events(service, "large", "downgrade")
        spent = service.budgets.spent("large")

    assert first.headers["x-router-tier"] == "large"
    assert spent >= 0.01, "the first answer spent the whole budget"
    assert second.status_code == 200, second.text
    assert second.headers["x-router-tier"] == "medium"
    assert second.headers["x-router-routed-tier"] == "large"
    assert second.json()["model"] == "sim-medium"
    assert count == 1
    assert "downgrading the turn to medium" in caplog.text


def test_an_exhausted_reject_tier_answers_429_until_midnight(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = budget_policy(
        "    daily_budget_usd: 0.01\n    on_budget_exhausted: reject\n"
    )
    with serve_router(write_policy(tmp_path, text)) as (url, service):
        httpx.post(url + "/v1/chat/completions", json=LARGE)
        refused = httpx.post(url + "/v1/chat/completions", json=LARGE)
        auto_small = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "small", "messages": LARGE["messages"]},
        )
        count = events(service, "large", "reject")

    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert "'large'" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 86_400
    assert auto_small.status_code == 200, "other tiers keep serving"
    assert count == 1
    assert "rejecting the turn" in caplog.text


def test_downgrade_with_no_cheaper_budget_left_rejects(tmp_path: Path) -> None:
    tiny = "    daily_budget_usd: 0.0000001\n"
    text = budget_policy(tiny, small=tiny).replace(
        "  medium:\n", "  medium:\n" + tiny, 1
    )
    with serve_router(write_policy(tmp_path, text)) as (url, service):
        for model in ("small", "medium", "large"):
            httpx.post(
                url + "/v1/chat/completions",
                json={"model": model, "messages": LARGE["messages"]},
            )
        refused = httpx.post(url + "/v1/chat/completions", json=LARGE)
        count = events(service, "large", "reject")

    assert refused.status_code == 429
    assert count == 1


def test_only_a_tier_with_a_spent_budget_counts_as_exhausted() -> None:
    text = budget_policy("    daily_budget_usd: 5\n")
    policy = parse_policy(text)
    budgets = Budgets(Metrics())

    assert not budgets.exhausted(policy, "large")
    budgets._local["large"] = 5.0
    assert budgets.exhausted(policy, "large")
    assert not budgets.exhausted(policy, "medium"), "no budget: never exhausted"


async def test_redis_spend_is_shared_between_processes(
    redis_server: RedisServer,
) -> None:
    policy = parse_policy(budget_policy("    daily_budget_usd: 1\n"))
    settings = make_settings(
        budgets_backend="redis", redis_url=redis_server.url, budgets_refresh_s=0
    )
    first = build_budgets(settings, Metrics())
    second = build_budgets(settings, Metrics())

    first.charge("large", 0.6)
    await first.drain()
    assert await second.choose(policy, "large") == ("large", None)
    second.charge("large", 0.6)
    await second.drain()
    chosen = await first.choose(policy, "large")

    assert chosen == ("medium", "budget of tier large exhausted")
    assert first.spent("large") == pytest.approx(1.2)
    await first.aclose()
    await second.aclose()


async def test_when_redis_dies_budgets_count_in_memory(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    policy = parse_policy(budget_policy("    daily_budget_usd: 1\n"))
    settings = make_settings(
        budgets_backend="redis", redis_url=redis_server.url, budgets_refresh_s=0
    )
    budgets = build_budgets(settings, Metrics())
    budgets.charge("large", 0.5)
    await budgets.drain()
    await budgets.choose(policy, "large")

    redis_server.stop()
    budgets.charge("large", 0.6)
    await budgets.drain()
    chosen = await budgets.choose(policy, "large")

    assert chosen[0] == "medium", "spend known before the outage still counts"
    assert budgets._pending == {"large": pytest.approx(0.6)}, "kept for later"
    assert "budget (redis) store add failed" in caplog.text
    await budgets.aclose()


async def test_dynamodb_spend_adds_per_tier_per_day(aws_env: str) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="budgets-test",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    policy = parse_policy(
        budget_policy("    daily_budget_usd: 1\n    on_budget_exhausted: reject\n")
    )
    stores = [
        Budgets(
            Metrics(),
            DynamoDBSpend("budgets-test", region="us-east-1", endpoint_url=aws_env),
            refresh_s=0,
        )
        for _ in range(2)
    ]

    for budgets in stores:
        budgets.charge("large", 0.25)
        await budgets.drain()
    item = client.get_item(
        TableName="budgets-test",
        Key={"pk": {"S": f"budget#large#{stores[0].day}"}},
    )["Item"]
    stores[0].charge("large", 0.5)
    await stores[0].drain()

    assert float(item["spend_usd"]["N"]) == pytest.approx(0.5)
    with pytest.raises(RateLimited, match="budget of tier 'large'"):
        await stores[1].choose(policy, "large")
    for budgets in stores:
        await budgets.aclose()
    client.close()
