"""Redis dies under traffic: routing continues, cache, limits and budgets degrade."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from helpers import RedisServer, serve_router, write_policy

KEY = "sk-outage-0001"
POLICY = """\
version: 1
name: outage
providers:
  sim:
    type: simulated
tiers:
  small:
    provider: sim
    model: sim-small
    input_usd_per_million: 1
    output_usd_per_million: 1
  medium:
    provider: sim
    model: sim-medium
    input_usd_per_million: 1
    output_usd_per_million: 1
  large:
    provider: sim
    model: sim-large
    input_usd_per_million: 1
    output_usd_per_million: 1
    daily_budget_usd: 1000
"""
PROMPTS = (
    "Write a simple FizzBuzz program in Python.",
    "Summarize this: the meeting moved to Tuesday.",
    "What is the capital of France?",
)


def test_traffic_survives_redis_dying_mid_test(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = {
        "api_keys": KEY,
        "cache_backend": "redis",
        "limits_backend": "redis",
        "budgets_backend": "redis",
        "budgets_refresh_s": 0,
        "redis_url": redis_server.url,
        "rate_limit_requests_per_min": 100_000,
        "rate_limit_tokens_per_min": 10_000_000,
    }
    statuses: list[int] = []
    slowest = 0.0
    stop = threading.Event()

    with serve_router(write_policy(tmp_path, POLICY), **settings) as (url, service):

        def send_traffic() -> None:
            nonlocal slowest
            with httpx.Client(
                headers={"authorization": f"Bearer {KEY}"}, timeout=10
            ) as client:
                i = 0
                while not stop.is_set():
                    body = {
                        "model": "auto",
                        "stream": i % 2 == 0,
                        "messages": [
                            {"role": "user", "content": PROMPTS[i % len(PROMPTS)]}
                        ],
                    }
                    started = time.monotonic()
                    response = client.post(url + "/v1/chat/completions", json=body)
                    slowest = max(slowest, time.monotonic() - started)
                    ok = response.status_code == 200 and (
                        not body["stream"] or response.text.endswith("[DONE]\n\n")
                    )
                    statuses.append(response.status_code if ok else -1)
                    i += 1

        sender = threading.Thread(target=send_traffic)
        sender.start()
        time.sleep(0.7)
        before = len(statuses)
        redis_server.stop()
        time.sleep(1.0)
        stop.set()
        sender.join(timeout=20)

        registry = service.metrics.registry
        cache_errors = registry.get_sample_value(
            "llm_router_cache_lookups_total", {"backend": "redis", "result": "error"}
        )
        cache_hits = registry.get_sample_value(
            "llm_router_cache_lookups_total", {"backend": "redis", "result": "hit"}
        )
        assert service.limiter is not None
        limits_degraded = not service.limiter.health.usable()
        budgets_degraded = not service.budgets.health.usable()

    assert before > 5, "traffic flowed while Redis was up"
    assert len(statuses) > before + 5, "and kept flowing after it died"
    assert set(statuses) == {200}, statuses
    assert (cache_hits or 0) > 0, "the Redis decision cache was in use"
    assert (cache_errors or 0) > 0, "and its failures were counted"
    assert limits_degraded
    assert budgets_degraded
    assert slowest < 2.0, f"the slowest request took {slowest:.2f} s"
