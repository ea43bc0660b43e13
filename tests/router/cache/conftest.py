"""Fixtures of the cache tests (the servers themselves live in `cache_servers`)."""

from cache_servers import hung_server, redis_server, tls_files

__all__ = ["hung_server", "redis_server", "tls_files"]
