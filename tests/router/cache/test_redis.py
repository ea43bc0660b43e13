"""The Redis decision cache against a real redis-server on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis.asyncio
from cache_servers import RedisServer, TLSFiles, start_redis

from helpers import make_settings, serve_router
from llm_router.cache.guard import CacheUnavailable
from llm_router.cache.redis import KEY_PREFIX, RedisCache
from llm_router.errors import ConfigError
from llm_router.service import RouterService, build_cache

PROMPT = "Summarise this paragraph about tidal energy in two sentences."

CacheFactory = Callable[..., RedisCache]


@pytest.fixture
async def make_cache() -> AsyncIterator[CacheFactory]:
    """Builds caches from settings overrides and closes them after the test."""
    made: list[RedisCache] = []

    def build(**overrides: Any) -> RedisCache:
        cache = RedisCache.from_settings(make_settings(**overrides))
        made.append(cache)
        return cache

    yield build
    for cache in made:
        await cache.aclose()


def count_lookups(service: RouterService, result: str) -> float:
    """`llm_router_cache_lookups_total` for the redis backend and one result."""
    value = service.metrics.registry.get_sample_value(
        "llm_router_cache_lookups_total", {"backend": "redis", "result": result}
    )
    return value or 0.0


async def test_a_stored_decision_is_read_back_and_expires_by_ttl(
    redis_server: RedisServer, make_cache: CacheFactory
) -> None:
    cache = make_cache(redis_url=redis_server.url)

    await cache.set("abc", b"[0.2,0.8]", ttl_s=120)

    assert await cache.get("abc") == b"[0.2,0.8]"
    assert await cache.get("missing") is None
    async with redis.asyncio.Redis(port=redis_server.port) as raw:
        ttl = await raw.ttl(KEY_PREFIX + "abc")
    assert 0 < ttl <= 120, ttl
    assert await cache.ready()


async def test_the_auth_token_is_sent_and_a_wrong_one_fails_readiness(
    tmp_path: Path, make_cache: CacheFactory
) -> None:
    server = start_redis(tmp_path, password="s3cret-token")
    try:
        good = make_cache(redis_url=server.url, redis_auth_token="s3cret-token")
        wrong = make_cache(redis_url=server.url, redis_auth_token="wrong")
        anonymous = make_cache(redis_url=server.url)

        await good.set("k", b"v", ttl_s=60)

        assert await good.get("k") == b"v"
        assert await good.ready()
        assert not await wrong.ready()
        with pytest.raises(redis.AuthenticationError):
            await anonymous.get("k")
    finally:
        server.kill()


async def test_tls_connects_with_the_configured_ca_and_verifies_the_server(
    tmp_path: Path, tls_files: TLSFiles, make_cache: CacheFactory
) -> None:
    server = start_redis(tmp_path, password="tok", tls=tls_files)
    try:
        trusted = make_cache(
            redis_url=server.url,
            redis_auth_token="tok",
            redis_tls_ca_file=tls_files.ca,
            cache_timeout_ms=2000,
        )
        untrusted = make_cache(
            redis_url=server.url, redis_auth_token="tok", cache_timeout_ms=2000
        )
        plain = make_cache(
            redis_url=server.url.replace("rediss://", "redis://"),
            redis_auth_token="tok",
        )

        await trusted.set("k", b"over-tls", ttl_s=60)

        assert await trusted.get("k") == b"over-tls"
        # The system CAs do not know the test CA: verification must refuse it.
        assert not await untrusted.ready()
        assert not await plain.ready()
    finally:
        server.kill()


async def test_a_hung_redis_costs_one_timeout_then_is_skipped(
    hung_server: int, make_cache: CacheFactory
) -> None:
    cache = make_cache(
        redis_url=f"redis://127.0.0.1:{hung_server}/0",
        cache_timeout_ms=50,
        cache_retry_s=30,
    )

    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        await cache.get("k")
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    with pytest.raises(CacheUnavailable):
        await cache.get("k")
    second_s = time.perf_counter() - started

    assert first_s < 0.5, f"a hung Redis held the request for {first_s:.3f} s"
    assert second_s < 0.005, f"a skipped Redis still cost {second_s:.4f} s"


def test_a_url_that_is_not_redis_is_refused_without_showing_the_password() -> None:
    settings = make_settings(cache_backend="redis", redis_url="http://u:pw@cache:6379")

    with pytest.raises(ConfigError, match="not a Redis URL") as caught:
        build_cache(settings)

    assert "pw" not in str(caught.value)


def test_requests_survive_redis_dying_and_the_cache_resumes_when_it_returns(
    tmp_path: Path,
) -> None:
    server = start_redis(tmp_path)
    overrides = {
        "cache_backend": "redis",
        "redis_url": server.url,
        "cache_retry_s": 0.3,
        "cache_timeout_ms": 200,
    }
    try:
        with (
            serve_router(**overrides) as (url, service),
            openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as sdk,
        ):

            def ask() -> float:
                started = time.perf_counter()
                reply = sdk.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": PROMPT}]
                )
                assert reply.choices[0].message.content
                return time.perf_counter() - started

            ask()
            ask()
            assert count_lookups(service, "miss") == 1
            assert count_lookups(service, "hit") == 1

            server.kill()
            slowest = max(ask() for _ in range(5))
            assert count_lookups(service, "error") == 5
            assert slowest < 1.0, f"a dead Redis slowed a request to {slowest:.2f} s"

            server = start_redis(tmp_path, port=server.port)
            time.sleep(0.35)
            ask()
            ask()
            assert count_lookups(service, "error") == 5
            assert count_lookups(service, "hit") == 2
    finally:
        server.kill()


def test_feedback_reaches_a_replica_that_did_not_route_the_request(
    redis_server: RedisServer,
) -> None:
    overrides = {"cache_backend": "redis", "redis_url": redis_server.url}
    with (
        serve_router(**overrides) as (first_url, _first),
        serve_router(**overrides) as (second_url, second),
    ):
        with openai.OpenAI(
            base_url=first_url + "/v1", api_key="x", max_retries=0
        ) as sdk:
            routed = sdk.chat.completions.with_raw_response.create(
                model="auto", messages=[{"role": "user", "content": PROMPT}]
            )
        request_id = routed.headers["x-request-id"]
        tier = routed.headers["x-router-tier"]
        body = {"request_id": request_id, "verdict": "too_strong"}
        # The first replica writes in the background; give it a moment.
        deadline = time.monotonic() + 2.0
        while True:
            reply = httpx.post(second_url + "/v1/feedback", json=body)
            if reply.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        unknown = httpx.post(
            second_url + "/v1/feedback",
            json={"request_id": "0" * 24, "verdict": "ok"},
        )

    assert reply.status_code == 200, reply.text
    assert (
        second.metrics.registry.get_sample_value(
            "llm_router_feedback_total", {"tier": tier, "verdict": "too_strong"}
        )
        == 1.0
    )
    assert unknown.status_code == 404
