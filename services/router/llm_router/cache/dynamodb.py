"""DynamoDB decision cache, for the Lambda stack.

Table layout (the small stack creates it; on-demand billing suits the traffic):

| attribute | type | role |
|---|---|---|
| `cache_key` | S | partition key |
| `decision` | B | the serialised classification |
| `expires_at` | N | epoch seconds; the table's TTL attribute |

DynamoDB deletes expired items lazily (often within hours), so reads check
`expires_at` themselves. Writes are conditional: an item is written only when
none exists or the one there has expired, so Lambdas that classified the same
turn at once store it once and a live entry's TTL is never pushed back. The
router needs `dynamodb:GetItem` and `dynamodb:PutItem` on the table, nothing
else (readiness uses GetItem too).

`aiobotocore` is imported only when this backend is configured, and its client
is created on first use: building it loads the DynamoDB service model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import TYPE_CHECKING, Any

from llm_router.cache.base import DecisionCache
from llm_router.cache.guard import CacheGuard
from llm_router.errors import ConfigError

if TYPE_CHECKING:
    from llm_router.settings import Settings

HASH_KEY = "cache_key"
VALUE_ATTRIBUTE = "decision"
TTL_ATTRIBUTE = "expires_at"
_PROBE_KEY = "llm-router:readiness-probe"
_PROBE_TIMEOUT_S = 1.0


class DynamoDBCache(DecisionCache):
    """Decisions in a DynamoDB table with a TTL attribute and conditional writes."""

    backend = "dynamodb"
    shared = True

    def __init__(
        self,
        table: str,
        guard: CacheGuard,
        *,
        region: str,
        endpoint_url: str | None = None,
    ) -> None:
        self.table = table
        self.guard = guard
        self.region = region
        self.endpoint_url = endpoint_url
        self._client: Any = None
        self._exit_stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDBCache:
        """A cache on the table the settings name (the client is made on first use)."""
        region = (
            settings.dynamodb_region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        if not region:
            msg = (
                "The DynamoDB decision cache needs a region: set "
                "LLM_ROUTER_DYNAMODB_REGION or AWS_REGION (Lambda sets it)."
            )
            raise ConfigError(msg)
        timeout_s = settings.cache_timeout_ms / 1000
        guard = CacheGuard(
            "dynamodb", timeout_s=timeout_s, retry_s=settings.cache_retry_s
        )
        return cls(
            settings.dynamodb_table,
            guard,
            region=region,
            endpoint_url=settings.dynamodb_endpoint_url,
        )

    async def get(self, key: str) -> bytes | None:
        client = await self._connect()
        reply = await self.guard.call(
            lambda: client.get_item(
                TableName=self.table,
                Key={HASH_KEY: {"S": key}},
                ProjectionExpression=f"{VALUE_ATTRIBUTE}, {TTL_ATTRIBUTE}",
            )
        )
        item = reply.get("Item")
        if item is None or int(item[TTL_ATTRIBUTE]["N"]) <= time.time():
            return None
        return bytes(item[VALUE_ATTRIBUTE]["B"])

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        client = await self._connect()
        now = int(time.time())

        async def put() -> None:
            try:
                await client.put_item(
                    TableName=self.table,
                    Item={
                        HASH_KEY: {"S": key},
                        VALUE_ATTRIBUTE: {"B": value},
                        TTL_ATTRIBUTE: {"N": str(now + ttl_s)},
                    },
                    ConditionExpression=(
                        f"attribute_not_exists({HASH_KEY}) OR {TTL_ATTRIBUTE} <= :now"
                    ),
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
            except client.exceptions.ConditionalCheckFailedException:
                # Another process stored this turn first; its entry is as good.
                return

        await self.guard.call(put)

    async def ready(self) -> bool:
        try:
            client = await self._connect()
        except Exception:  # noqa: BLE001 - readiness reports, it does not raise
            return False
        return await self.guard.probe(
            lambda: client.get_item(
                TableName=self.table, Key={HASH_KEY: {"S": _PROBE_KEY}}
            ),
            timeout_s=_PROBE_TIMEOUT_S,
        )

    async def aclose(self) -> None:
        await self._exit_stack.aclose()
        self._client = None

    async def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                self._client = await self._exit_stack.enter_async_context(
                    _create_client(self.region, self.endpoint_url)
                )
        return self._client


def _create_client(region: str, endpoint_url: str | None) -> Any:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    # The guard bounds routed calls far tighter; these socket timeouts only
    # have to let a readiness probe open the first connection.
    config = AioConfig(
        connect_timeout=_PROBE_TIMEOUT_S,
        read_timeout=_PROBE_TIMEOUT_S,
        # One attempt: the router classifies without the cache rather than wait.
        retries={"total_max_attempts": 1},
        max_pool_connections=32,
    )
    return get_session().create_client(
        "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
    )
