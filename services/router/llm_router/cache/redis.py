"""Redis decision cache, for ElastiCache (TLS and AUTH token) or any Redis.

Entries are plain strings under `llm-router:decision:<key>` with a TTL set on
write (`SET ... EX`), so Redis expires them itself and an `allkeys-lru` or
`volatile-ttl` eviction policy keeps memory bounded. The client never retries:
a failed call is bypassed by the router at once, and the guard skips Redis
for a few seconds after a failure (see `cache/guard.py`).

`redis` is imported only when this backend is configured.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from llm_router.cache.base import DecisionCache
from llm_router.cache.guard import CacheGuard
from llm_router.errors import ConfigError

if TYPE_CHECKING:
    from llm_router.settings import Settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "llm-router:decision:"
_SCHEMES = ("redis://", "rediss://", "unix://")


class RedisCache(DecisionCache):
    """Decisions in Redis with a TTL; a failing Redis is skipped, never waited on."""

    backend = "redis"
    shared = True

    def __init__(self, client: Redis, guard: CacheGuard) -> None:
        self.client = client
        self.guard = guard

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisCache:
        """A cache on the Redis the settings name (no connection is made yet)."""
        timeout_s = settings.cache_timeout_ms / 1000
        client = connect(settings, timeout_s=timeout_s)
        guard = CacheGuard("redis", timeout_s=timeout_s, retry_s=settings.cache_retry_s)
        return cls(client, guard)

    async def get(self, key: str) -> bytes | None:
        value = await self.guard.call(lambda: self.client.get(KEY_PREFIX + key))
        if value is None:
            return None
        return value if isinstance(value, bytes) else value.encode()

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        await self.guard.call(
            lambda: self.client.set(KEY_PREFIX + key, value, ex=ttl_s)
        )

    async def ready(self) -> bool:
        return await self.guard.probe(self.client.ping)

    async def aclose(self) -> None:
        await self.client.aclose()


def connect(settings: Settings, *, timeout_s: float) -> Redis:
    """A Redis client for `settings.redis_url` with TLS, AUTH and short timeouts."""
    url = settings.redis_url
    if not url.startswith(_SCHEMES):
        msg = (
            f"LLM_ROUTER_REDIS_URL {_redact(url)!r} is not a Redis URL. Use "
            "redis://host:port/db, or rediss:// for TLS (ElastiCache in-transit "
            "encryption)."
        )
        raise ConfigError(msg)
    token = settings.redis_auth_token
    # Passed only for rediss://: the plain connection class refuses ssl_* options.
    tls: dict[str, Any] = {}
    if url.startswith("rediss://"):
        tls = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
        if settings.redis_tls_ca_file is not None:
            tls["ssl_ca_certs"] = str(settings.redis_tls_ca_file)
    elif token is not None:
        logger.warning("Redis AUTH token configured without TLS (redis://)")

    return Redis.from_url(
        url,
        password=token.get_secret_value() if token is not None else None,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
        **tls,
    )


def _redact(url: str) -> str:
    """The URL without any password, for error messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest
