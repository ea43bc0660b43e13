"""Keeps a dead remote cache from slowing requests down.

Each remote call is bounded by a short timeout. After a failure the backend is
skipped for `retry_s`: calls fail at once with `CacheUnavailable`, which the
router counts and logs like any other cache failure, and the turn is
classified directly. The first call after the pause tries the backend again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CacheUnavailable(Exception):
    """The backend failed recently and is being skipped."""


class CacheGuard:
    """A per-call timeout plus a pause after each failure."""

    __slots__ = ("backend", "retry_s", "skip_until", "timeout_s")

    def __init__(self, backend: str, *, timeout_s: float, retry_s: float) -> None:
        self.backend = backend
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.skip_until = 0.0

    @property
    def skipping(self) -> bool:
        """Whether calls are currently refused without trying the backend."""
        return self.skip_until > time.monotonic()

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one backend call within the timeout, unless the backend is paused."""
        if self.skipping:
            msg = f"{self.backend} cache skipped after a recent failure"
            raise CacheUnavailable(msg)

        try:
            async with asyncio.timeout(self.timeout_s):
                result = await operation()
        except Exception:
            if self.skip_until == 0.0:
                logger.warning(
                    "%s cache failed; skipping it for %.1f s at a time until it "
                    "answers again",
                    self.backend,
                    self.retry_s,
                )
            self.skip_until = time.monotonic() + self.retry_s
            raise

        self._recovered()
        return result

    async def probe(
        self, operation: Callable[[], Awaitable[object]], timeout_s: float = 1.0
    ) -> bool:
        """Whether the backend answers within a readiness probe's longer timeout.

        Probes ignore the pause and warm the connection (and, for AWS, the
        credentials) so the first routed request does not pay for them.
        """
        try:
            async with asyncio.timeout(timeout_s):
                await operation()
        except Exception:  # noqa: BLE001 - readiness reports, it does not raise
            return False
        self._recovered()
        return True

    def _recovered(self) -> None:
        if self.skip_until:
            logger.info("%s cache answers again", self.backend)
            self.skip_until = 0.0
