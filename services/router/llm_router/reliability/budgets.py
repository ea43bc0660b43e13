"""Daily USD budgets per tier.

Spend is counted per tier per UTC day at the policy's prices, in memory, Redis
(`INCRBYFLOAT` on `llm-router:budget:<day>:<tier>`) or DynamoDB (`UpdateItem ADD
spend_usd` on the item `pk = budget#<tier>#<day>`). A tier whose spend has reached
its `daily_budget_usd` is exhausted until UTC midnight; its `on_budget_exhausted`
says what happens to turns routed to it:

- `downgrade`: the turn goes to the next cheaper tier that still has budget;
- `reject`: 429 with `Retry-After` set to the seconds left in the UTC day.

With a shared store, each process reads spend at most every `refresh_s` and
adds its own spend as it happens, so the fleet can overshoot a budget by what
it spends in one refresh interval.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from llm_router.errors import RateLimited
from llm_router.policy.schema import Policy
from llm_router.reliability.stores import StoreHealth
from llm_router.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)


class SpendStore(Protocol):
    """Where spend is shared between router processes."""

    backend: str

    async def read(self, day: str, tiers: list[str]) -> dict[str, float]:
        """Spend so far on `day` for each of `tiers`."""

    async def add(self, day: str, spend: dict[str, float]) -> None:
        """Add spend per tier on `day`."""

    async def aclose(self) -> None:
        """Release connections."""


class RedisSpend:
    """Spend in Redis, one float per tier per day (kept three days)."""

    backend = "redis"

    def __init__(self, redis: Redis, prefix: str = "llm-router:budget:") -> None:
        self.redis = redis
        self.prefix = prefix

    async def read(self, day: str, tiers: list[str]) -> dict[str, float]:
        values = await self.redis.mget([f"{self.prefix}{day}:{t}" for t in tiers])
        return {t: float(v or 0) for t, v in zip(tiers, values, strict=True)}

    async def add(self, day: str, spend: dict[str, float]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for tier, usd in spend.items():
                key = f"{self.prefix}{day}:{tier}"
                pipe.incrbyfloat(key, usd)
                pipe.expire(key, 3 * 86_400)
            await pipe.execute()

    async def aclose(self) -> None:
        await self.redis.aclose()


class DynamoDBSpend:
    """Spend in a DynamoDB table keyed by `pk` (string), one item per tier per day."""

    backend = "dynamodb"

    def __init__(
        self,
        table: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout_s: float = 1.0,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.table = table
        config = Config(
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": 1},
        )
        self.client: Any = boto3.client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
        )

    async def read(self, day: str, tiers: list[str]) -> dict[str, float]:
        return await asyncio.to_thread(self._read, day, tiers)

    async def add(self, day: str, spend: dict[str, float]) -> None:
        await asyncio.to_thread(self._add, day, spend)

    async def aclose(self) -> None:
        self.client.close()

    def _read(self, day: str, tiers: list[str]) -> dict[str, float]:
        keys = [{"pk": {"S": f"budget#{t}#{day}"}} for t in tiers]
        answer = self.client.batch_get_item(
            RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}}
        )
        spent = dict.fromkeys(tiers, 0.0)
        for item in answer["Responses"].get(self.table, []):
            tier = item["pk"]["S"].split("#")[1]
            spent[tier] = float(item["spend_usd"]["N"])
        return spent

    def _add(self, day: str, spend: dict[str, float]) -> None:
        expires = int(time.time()) + 3 * 86_400
        for tier, usd in spend.items():
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"budget#{tier}#{day}"}},
                UpdateExpression="ADD spend_usd :usd SET expires_at = :exp",
                ExpressionAttributeValues={
                    ":usd": {"N": str(Decimal(repr(usd)))},
                    ":exp": {"N": str(expires)},
                },
            )


class Budgets:
    """Checks tiers against their daily budgets and charges spend to them."""

    def __init__(
        self,
        metrics: Metrics,
        store: SpendStore | None = None,
        *,
        refresh_s: float = 1.0,
    ) -> None:
        self.metrics = metrics
        self.store = store
        self.refresh_s = refresh_s
        self.backend = store.backend if store is not None else "memory"
        self.health = StoreHealth(f"budget ({self.backend})")
        self.day = _utc_day()
        self._shared: dict[str, float] = {}
        self._local: dict[str, float] = {}
        self._pending: dict[str, float] = {}
        self._read_at = 0.0
        self._refreshing: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def spent(self, tier: str) -> float:
        """Today's known spend on a tier, in USD."""
        return self._shared.get(tier, 0.0) + self._local.get(tier, 0.0)

    async def choose(self, policy: Policy, tier: str) -> tuple[str, str | None]:
        """The tier to call instead of an exhausted `tier`, and why it changed.

        Raises RateLimited when the exhausted tier rejects, or when no cheaper
        tier has budget left.
        """
        await self._refresh(policy)
        if not self.exhausted(policy, tier):
            return tier, None

        config = policy.tiers[tier]
        budget = config.daily_budget_usd or 0.0
        if config.on_budget_exhausted == "downgrade":
            names = policy.tier_names
            for cheaper in reversed(names[: names.index(tier)]):
                if not self.exhausted(policy, cheaper):
                    self.metrics.budget_events.labels(tier, "downgrade").inc()
                    logger.warning(
                        "tier %s spent %.4f of its %.2f USD daily budget; "
                        "downgrading the turn to %s",
                        tier,
                        self.spent(tier),
                        budget,
                        cheaper,
                    )
                    return cheaper, f"budget of tier {tier} exhausted"

        self.metrics.budget_events.labels(tier, "reject").inc()
        logger.warning(
            "tier %s spent %.4f of its %.2f USD daily budget; rejecting the turn",
            tier,
            self.spent(tier),
            budget,
        )
        retry_after = _seconds_to_midnight()
        msg = (
            f"The daily budget of tier {tier!r} ({budget:.2f} USD) is spent and no "
            f"cheaper tier has budget left. Budgets reset at 00:00 UTC, in "
            f"{retry_after} s."
        )
        raise RateLimited(
            msg, code="budget_exhausted", headers={"retry-after": str(retry_after)}
        )

    def exhausted(self, policy: Policy, tier: str) -> bool:
        """Whether a tier has a budget and has spent it today."""
        budget = policy.tiers[tier].daily_budget_usd
        return budget is not None and self.spent(tier) >= budget

    def charge(self, tier: str, usd: float) -> None:
        """Add a finished call's cost to its tier (shared stores in the background)."""
        if usd <= 0:
            return
        self._roll_day()
        self._local[tier] = self._local.get(tier, 0.0) + usd
        if self.store is None:
            return
        self._pending[tier] = self._pending.get(tier, 0.0) + usd
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for background writes (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def aclose(self) -> None:
        """Flush pending spend and close the store."""
        await self.drain()
        if self.store is not None:
            await self.store.aclose()

    async def _flush(self) -> None:
        if not self._pending or not self.health.usable() or self.store is None:
            return
        pending, self._pending = self._pending, {}
        day = self.day
        try:
            await self.store.add(day, pending)
        except Exception as exc:  # noqa: BLE001 - keep it for the next flush
            self.health.failed("add", exc)
            for tier, usd in pending.items():
                self._pending[tier] = self._pending.get(tier, 0.0) + usd
            return
        self.health.succeeded()

    async def _refresh(self, policy: Policy) -> None:
        self._roll_day()
        if self.store is None:
            return
        now = time.monotonic()
        if now - self._read_at < self.refresh_s or not self.health.usable():
            return
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        if self._refreshing.locked():
            return  # another request is already reading; use what we know
        async with self._refreshing:
            self._read_at = now
            tiers = [n for n, t in policy.tiers.items() if t.daily_budget_usd]
            await self._flush()
            try:
                shared = await self.store.read(self.day, tiers)
            except Exception as exc:  # noqa: BLE001 - keep counting locally
                self.health.failed("read", exc)
                return
            self.health.succeeded()
            # What this process wrote is now inside the shared figure; only
            # spend not yet written stays local.
            self._shared = shared
            self._local = dict(self._pending)

    def _roll_day(self) -> None:
        day = _utc_day()
        if day != self.day:
            self.day = day
            self._shared, self._local = {}, {}
            self._pending = {}


def _utc_day() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def _seconds_to_midnight() -> int:
    now = dt.datetime.now(dt.UTC)
    midnight = (now + dt.timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return max(1, math.ceil((midnight - now).total_seconds()))
