"""Per-key rate limits: requests and tokens per minute.

Fixed one-minute windows (UTC minute boundaries), so every router process that
shares a Redis agrees on the window without coordination. A request is admitted
while its key has made fewer than `requests_per_min` requests and used fewer
than `tokens_per_min` tokens (input plus output, as the upstream reported them)
in the current window; otherwise it gets 429 with `Retry-After` set to the
seconds left in the window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING

from llm_router.errors import RateLimited
from llm_router.reliability.stores import StoreHealth
from llm_router.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

WINDOW_S = 60


class MemoryWindows:
    """Per-key counts of the current window, in this process."""

    backend = "memory"

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}

    def hit(self, key_id: str, window: int) -> tuple[int, int]:
        """Count one request; return (requests, tokens) of the window so far."""
        counts = self._counts.get(key_id)
        if counts is None or counts[0] != window:
            if len(self._counts) > 100_000:
                self._drop_old(window)
            counts = self._counts[key_id] = [window, 0, 0]
        counts[1] += 1
        return counts[1], counts[2]

    def add_tokens(self, key_id: str, window: int, tokens: int) -> None:
        """Add tokens used by a finished request."""
        counts = self._counts.get(key_id)
        if counts is None or counts[0] != window:
            counts = self._counts[key_id] = [window, 0, 0]
        counts[2] += tokens

    def _drop_old(self, window: int) -> None:
        for key in [k for k, c in self._counts.items() if c[0] != window]:
            del self._counts[key]


class RateLimiter:
    """Admits or refuses requests per API key; Redis-backed when given a client."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        requests_per_min: int | None,
        tokens_per_min: int | None,
        redis: Redis | None = None,
        prefix: str = "llm-router:limits:",
    ) -> None:
        self.metrics = metrics
        self.requests_per_min = requests_per_min
        self.tokens_per_min = tokens_per_min
        self.redis = redis
        self.prefix = prefix
        self.memory = MemoryWindows()
        self.health = StoreHealth("rate-limit")
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def backend(self) -> str:
        """Where counts live: redis or memory."""
        return "redis" if self.redis is not None else "memory"

    async def admit(self, key_id: str) -> None:
        """Count a request; raise 429 if the key is over either limit."""
        now = time.time()
        window = int(now // WINDOW_S)
        requests, tokens = await self._hit(key_id, window)
        limit = None
        if self.requests_per_min is not None and requests > self.requests_per_min:
            limit, allowed, unit = "requests", self.requests_per_min, "requests"
        elif self.tokens_per_min is not None and tokens >= self.tokens_per_min:
            limit, allowed, unit = "tokens", self.tokens_per_min, "tokens"
        if limit is None:
            return

        self.metrics.rate_limited.labels(limit).inc()
        retry_after = max(1, math.ceil((window + 1) * WINDOW_S - now))
        msg = (
            f"Rate limit reached for this API key: {allowed} {unit} per minute. "
            f"Retry after {retry_after} s."
        )
        raise RateLimited(
            msg,
            code=f"rate_limit_{limit}",
            headers={"retry-after": str(retry_after)},
        )

    def charge(self, key_id: str, tokens: int) -> None:
        """Charge a finished request's tokens to its key (Redis in the background)."""
        if self.tokens_per_min is None or tokens <= 0:
            return
        window = int(time.time() // WINDOW_S)
        if self.redis is None or not self.health.usable():
            self.memory.add_tokens(key_id, window, tokens)
            return
        task = asyncio.get_running_loop().create_task(
            self._add_tokens(key_id, window, tokens)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for background writes (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def _add_tokens(self, key_id: str, window: int, tokens: int) -> None:
        assert self.redis is not None
        key = f"{self.prefix}{key_id}:{window}:tokens"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incrby(key, tokens)
                pipe.expire(key, WINDOW_S * 2)
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - fall back to memory
            self.health.failed("charge", exc)
            self.memory.add_tokens(key_id, window, tokens)
            return
        self.health.succeeded()

    async def _hit(self, key_id: str, window: int) -> tuple[int, int]:
        if self.redis is None or not self.health.usable():
            return self.memory.hit(key_id, window)
        base = f"{self.prefix}{key_id}:{window}"
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(base + ":requests")
                pipe.expire(base + ":requests", WINDOW_S * 2)
                pipe.get(base + ":tokens")
                requests, _, tokens = await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - fall back to memory
            self.health.failed("admit", exc)
            return self.memory.hit(key_id, window)
        self.health.succeeded()
        return int(requests), int(tokens or 0)

    async def aclose(self) -> None:
        """Finish background writes and close the Redis connection pool."""
        await self.drain()
        if self.redis is not None:
            await self.redis.aclose()
