"""The in-memory decision cache: LRU bound, TTL, and what an entry costs."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from llm_router.cache.memory import MemoryCache


async def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", b"1", ttl_s=60)
    await cache.set("b", b"2", ttl_s=60)
    assert await cache.get("a") == b"1"

    await cache.set("c", b"3", ttl_s=60)

    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"
    assert await cache.get("c") == b"3"
    assert len(cache) == 2


async def test_expired_entries_are_not_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = MemoryCache()
    now = 1000.0
    monkeypatch.setattr("llm_router.cache.memory.time.monotonic", lambda: now)
    await cache.set("k", b"v", ttl_s=10)

    now += 11

    assert await cache.get("k") is None
    assert len(cache) == 0


async def test_cached_orjson_values_cost_their_size_not_a_buffer() -> None:
    # orjson returns its output inside a 4 KiB allocation; kept as they come,
    # 10,000 decisions held ~40 MB. The cache keeps exact-size copies.
    cache = MemoryCache(max_entries=2_000)
    keys = [str(i) for i in range(2_000)]

    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i, key in enumerate(keys):
            await cache.set(key, orjson.dumps([0.5 + i, *([1 / 12] * 12)]), 60)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    per_entry = (after - before) / len(keys)
    assert per_entry < 1_000, f"{per_entry:.0f} bytes per cached decision"
    assert await cache.get("7") == orjson.dumps([7.5, *([1 / 12] * 12)])
