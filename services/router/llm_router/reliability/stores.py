"""What the shared-state stores (rate limits, budgets) have in common.

Redis or DynamoDB holds the state several router processes share. When that
store fails, the router keeps serving and counts in process memory instead
(limits and budgets then hold per process, not per fleet), and leaves the
store alone for `retry_s` before trying it again, so a dead store costs each
request nothing.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from llm_router.settings import Settings

logger = logging.getLogger(__name__)


class StoreHealth:
    """Remembers a failing store and when to try it again."""

    __slots__ = ("down_until", "name", "retry_s")

    def __init__(self, name: str, retry_s: float = 5.0) -> None:
        self.name = name
        self.retry_s = retry_s
        self.down_until = 0.0

    def usable(self) -> bool:
        """Whether the store should be tried now."""
        return self.down_until == 0.0 or time.monotonic() >= self.down_until

    def failed(self, operation: str, exc: BaseException) -> None:
        """Mark the store down for `retry_s` and say so once."""
        if self.down_until == 0.0 or time.monotonic() >= self.down_until:
            logger.warning(
                "%s store %s failed (%s); counting in process memory for %.0f s",
                self.name,
                operation,
                type(exc).__name__,
                self.retry_s,
            )
        self.down_until = time.monotonic() + self.retry_s

    def succeeded(self) -> None:
        """The store answered again."""
        if self.down_until:
            logger.info("%s store is reachable again", self.name)
            self.down_until = 0.0


def connect_redis(settings: Settings) -> Redis:
    """A Redis client with short timeouts: shared state must never stall a request."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    password = settings.redis_auth_token
    return Redis.from_url(
        settings.redis_url,
        password=password.get_secret_value() if password else None,
        socket_timeout=settings.store_timeout_s,
        socket_connect_timeout=settings.store_timeout_s,
        retry_on_timeout=False,
        # No client-side retries: a failed call falls back to memory at once.
        retry=Retry(NoBackoff(), 0),
    )
