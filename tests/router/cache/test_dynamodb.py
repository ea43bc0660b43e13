"""The DynamoDB decision cache against moto's server, driven by aiobotocore."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import boto3
import openai
import pytest
from moto.server import ThreadedMotoServer

from helpers import make_settings, serve_router
from llm_router.cache.dynamodb import (
    HASH_KEY,
    TTL_ATTRIBUTE,
    VALUE_ATTRIBUTE,
    DynamoDBCache,
)
from llm_router.cache.guard import CacheUnavailable
from llm_router.errors import ConfigError
from llm_router.service import RouterService, build_cache

TABLE = "llm-router-decisions"
PROMPT = "Rewrite this sentence so it sounds friendlier: send me the report."

CacheFactory = Callable[..., DynamoDBCache]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials, so nothing reads a real profile."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def moto_url(aws_env: None) -> Iterator[str]:
    """moto's server on a loopback port, with the decision table and its TTL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client("dynamodb", endpoint_url=url, region_name="eu-west-1")
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": HASH_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": HASH_KEY, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=TABLE,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    yield url
    # moto keeps one in-memory backend per process, shared by every server.
    client.delete_table(TableName=TABLE)
    client.close()
    server.stop()


@pytest.fixture
async def make_cache(moto_url: str) -> AsyncIterator[CacheFactory]:
    """Builds caches on the moto table and closes them after the test."""
    made: list[DynamoDBCache] = []

    def build(**overrides: Any) -> DynamoDBCache:
        values: dict[str, Any] = {
            "dynamodb_endpoint_url": moto_url,
            "dynamodb_table": TABLE,
            "cache_timeout_ms": 2000,
        }
        values.update(overrides)
        cache = DynamoDBCache.from_settings(make_settings(**values))
        made.append(cache)
        return cache

    yield build
    for cache in made:
        await cache.aclose()


def read_item(url: str, key: str) -> dict[str, Any]:
    """The raw item, read with boto3 (not through the cache)."""
    client = boto3.client("dynamodb", endpoint_url=url, region_name="eu-west-1")
    try:
        item: dict[str, Any] = client.get_item(
            TableName=TABLE, Key={HASH_KEY: {"S": key}}
        )["Item"]
    finally:
        client.close()
    return item


def put_item(url: str, key: str, value: bytes, expires_at: int) -> None:
    """Write an item directly, bypassing the cache's condition."""
    client = boto3.client("dynamodb", endpoint_url=url, region_name="eu-west-1")
    try:
        client.put_item(
            TableName=TABLE,
            Item={
                HASH_KEY: {"S": key},
                VALUE_ATTRIBUTE: {"B": value},
                TTL_ATTRIBUTE: {"N": str(expires_at)},
            },
        )
    finally:
        client.close()


async def test_a_stored_decision_is_read_back_with_its_ttl_attribute(
    moto_url: str, make_cache: CacheFactory
) -> None:
    cache = make_cache()

    await cache.set("abc", b"[0.3,0.7]", ttl_s=600)

    assert await cache.get("abc") == b"[0.3,0.7]"
    assert await cache.get("missing") is None
    item = read_item(moto_url, "abc")
    expires_at = int(item[TTL_ATTRIBUTE]["N"])
    assert 590 <= expires_at - time.time() <= 600, expires_at
    assert await cache.ready()


async def test_an_expired_item_not_yet_deleted_is_a_miss_and_is_replaced(
    moto_url: str, make_cache: CacheFactory
) -> None:
    put_item(moto_url, "old", b"stale", expires_at=int(time.time()) - 10)
    cache = make_cache()

    assert await cache.get("old") is None
    await cache.set("old", b"fresh", ttl_s=60)

    assert await cache.get("old") == b"fresh"


async def test_a_live_entry_is_not_overwritten_by_a_second_writer(
    moto_url: str, make_cache: CacheFactory
) -> None:
    first, second = make_cache(), make_cache()

    await first.set("same-turn", b"first", ttl_s=60)
    expires_at = read_item(moto_url, "same-turn")[TTL_ATTRIBUTE]["N"]
    await second.set("same-turn", b"second", ttl_s=600)

    assert await second.get("same-turn") == b"first"
    assert read_item(moto_url, "same-turn")[TTL_ATTRIBUTE]["N"] == expires_at
    assert not second.guard.skipping, "a lost race is not a backend failure"


async def test_a_missing_table_fails_readiness_and_lookups(
    make_cache: CacheFactory,
) -> None:
    cache = make_cache(dynamodb_table="no-such-table")

    assert not await cache.ready()
    with pytest.raises(Exception, match="ResourceNotFound"):
        await cache.get("k")


def test_a_missing_region_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    with pytest.raises(ConfigError, match="LLM_ROUTER_DYNAMODB_REGION"):
        build_cache(make_settings(cache_backend="dynamodb"))


def count_lookups(service: RouterService, result: str) -> float:
    """`llm_router_cache_lookups_total` for the dynamodb backend and one result."""
    value = service.metrics.registry.get_sample_value(
        "llm_router_cache_lookups_total", {"backend": "dynamodb", "result": result}
    )
    return value or 0.0


@pytest.mark.usefixtures("aws_env")
def test_requests_use_the_table_and_survive_it_going_away() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    table = f"{TABLE}-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb", endpoint_url=url, region_name="eu-west-1")
    client.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": HASH_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": HASH_KEY, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.close()
    overrides = {
        "cache_backend": "dynamodb",
        "dynamodb_endpoint_url": url,
        "dynamodb_table": table,
        "cache_timeout_ms": 1000,
    }
    stopped = False
    try:
        with (
            serve_router(**overrides) as (router_url, service),
            openai.OpenAI(
                base_url=router_url + "/v1", api_key="x", max_retries=0
            ) as sdk,
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
            assert (count_lookups(service, "miss"), count_lookups(service, "hit")) == (
                1,
                1,
            )

            server.stop()
            stopped = True
            slowest = max(ask() for _ in range(3))

            assert count_lookups(service, "error") == 3
            assert slowest < 1.5, f"a dead table slowed a request to {slowest:.2f} s"
    finally:
        if not stopped:
            server.stop()


@pytest.mark.usefixtures("aws_env")
async def test_a_hung_endpoint_costs_one_timeout_then_is_skipped(
    hung_server: int,
) -> None:
    cache = DynamoDBCache.from_settings(
        make_settings(
            dynamodb_endpoint_url=f"http://127.0.0.1:{hung_server}",
            cache_timeout_ms=50,
            cache_retry_s=30,
        )
    )
    await cache._connect()  # the client is built once, outside any request
    try:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await cache.get("k")
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        with pytest.raises(CacheUnavailable):
            await cache.set("k", b"v", ttl_s=60)
        second_s = time.perf_counter() - started
    finally:
        await cache.aclose()

    assert first_s < 0.5, f"a hung endpoint held the request for {first_s:.3f} s"
    assert second_s < 0.005, f"a skipped table still cost {second_s:.4f} s"


async def test_feedback_memory_is_shared_through_the_table(
    moto_url: str, make_cache: CacheFactory
) -> None:
    from llm_router.service import FEEDBACK_KEY_PREFIX, RecentRequests

    # Two processes' feedback memories (two Lambda sandboxes), one table.
    routed_here = RecentRequests(60, shared=make_cache())
    asked_there = RecentRequests(60, shared=make_cache())

    routed_here.remember("req-1", "medium", "open_qa")
    await routed_here.drain()
    found = await asked_there.find("req-1")

    assert found is not None
    assert (found.tier, found.task) == ("medium", "open_qa")
    assert await asked_there.find("req-2") is None
    item = read_item(moto_url, FEEDBACK_KEY_PREFIX + "req-1")
    assert 50 <= int(item[TTL_ATTRIBUTE]["N"]) - time.time() <= 60
