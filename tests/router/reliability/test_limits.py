"""Per-key rate limits, in memory and in a real Redis that dies mid-test."""

from __future__ import annotations

import time

import httpx
import pytest

from helpers import RedisServer, serve_router
from llm_router.service import RouterService

KEYS = "sk-alpha-0001,sk-beta-0002"
BODY = {"model": "small", "messages": [{"role": "user", "content": "Rewrite: hi"}]}


def post(url: str, key: str = "sk-alpha-0001") -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def limited(service: RouterService, limit: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "llm_router_rate_limited_total", {"limit": limit}
    )
    return 0.0 if value is None else value


def test_requests_over_the_limit_get_429_with_retry_after() -> None:
    with serve_router(api_keys=KEYS, rate_limit_requests_per_min=2) as (url, svc):
        statuses = [post(url).status_code for _ in range(3)]
        refused = post(url)
        other_key = post(url, "sk-beta-0002")
        count = limited(svc, "requests")

    assert statuses == [200, 200, 429]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_requests"
    assert "2 requests per minute" in error["message"]
    assert other_key.status_code == 200, "each key has its own window"
    assert count == 2


def test_tokens_over_the_limit_get_429() -> None:
    with serve_router(api_keys=KEYS, rate_limit_tokens_per_min=30) as (url, svc):
        first = post(url)
        second = post(url)
        count = limited(svc, "tokens")

    assert first.status_code == 200, first.text
    usage = first.json()["usage"]
    assert usage["total_tokens"] >= 30, "one answer spends the window's tokens"
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limit_tokens"
    assert count == 1


def test_without_keys_limits_apply_to_all_callers_together() -> None:
    with serve_router(rate_limit_requests_per_min=1) as (url, _svc):
        first = httpx.post(url + "/v1/chat/completions", json=BODY)
        second = httpx.post(url + "/v1/chat/completions", json=BODY)

    assert (first.status_code, second.status_code) == (200, 429)


def test_redis_shares_the_window_between_router_processes(
    redis_server: RedisServer,
) -> None:
    settings = {
        "api_keys": KEYS,
        "rate_limit_requests_per_min": 3,
        "limits_backend": "redis",
        "redis_url": redis_server.url,
    }
    with (
        serve_router(**settings) as (url_a, _a),
        serve_router(**settings) as (
            url_b,
            _b,
        ),
    ):
        statuses = [post(url).status_code for url in (url_a, url_b, url_a, url_b)]

    assert statuses == [200, 200, 200, 429]


def test_when_redis_dies_limits_fall_back_to_process_memory(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {
        "api_keys": KEYS,
        "rate_limit_requests_per_min": 2,
        "rate_limit_tokens_per_min": 100_000,
        "limits_backend": "redis",
        "redis_url": redis_server.url,
    }
    with serve_router(**settings) as (url, service):
        before = post(url)
        redis_server.stop()
        started = time.monotonic()
        after = [post(url).status_code for _ in range(3)]
        elapsed = time.monotonic() - started
        assert service.limiter is not None
        degraded = not service.limiter.health.usable()

    assert before.status_code == 200
    assert after == [200, 200, 429], "memory counts afresh, and still limits"
    assert elapsed < 2.0, "a dead Redis costs requests almost nothing"
    assert degraded
    # Whichever call meets the dead server first (admit, or the background
    # token charge) reports it; one warning per outage window.
    assert "rate-limit store" in caplog.text
    assert "failed (ConnectionError); counting in process memory" in caplog.text
