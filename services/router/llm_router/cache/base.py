"""The decision-cache interface.

A cache maps a key (a hash of the normalised turn, its context, the classifier
and the policy version) to the classification made for it, as bytes. Backends
raise on failure; the router catches, counts and logs, and carries on without
the cache, so a broken cache never fails a request.
"""

from __future__ import annotations

import abc
import hashlib

from llm_router.classifiers.base import Turn


def cache_key(turn: Turn, *, policy_version: str, classifier: str) -> str:
    """A stable key for a turn under one policy and classifier."""
    digest = hashlib.blake2b(digest_size=20)
    for part in (policy_version, classifier, turn.context, turn.text):
        normalised = " ".join(part.split()).casefold()
        digest.update(normalised.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


class DecisionCache(abc.ABC):
    """A key-value store of serialised classifications with a TTL."""

    backend: str = "cache"
    # Whether other processes see the same entries (Redis, DynamoDB).
    shared: bool = False

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The stored value, or None when absent or expired."""

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Store a value that expires after `ttl_s` seconds."""

    async def ready(self) -> bool:
        """Whether the backend answers (for `/readyz`; never fails readiness)."""
        return True

    async def aclose(self) -> None:
        """Release connections."""
