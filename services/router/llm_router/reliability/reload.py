"""Hot reload of the policy: on SIGHUP and when the policy file changes.

The reload itself is `RouterService.reload`: an invalid file keeps the running
policy. The file's directory is watched rather than the file, because editors
and Kubernetes ConfigMap mounts replace files (rename, symlink swap) instead
of writing them in place; a change reloads only if the file's bytes changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_router.service import RouterService

logger = logging.getLogger(__name__)


class PolicyReloader:
    """Reloads a service's policy on SIGHUP and on policy-file changes."""

    def __init__(self, service: RouterService, *, debounce_ms: int = 200) -> None:
        self.service = service
        self.debounce_ms = debounce_ms
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sighup = False
        self._last: bytes | None = None

    async def start(self) -> None:
        """Install the SIGHUP handler (main thread only) and start the file watch."""
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
                self._sighup = True
        settings = self.service.settings
        path = settings.policy_file
        if settings.reload_watch and path is not None and settings.policy is None:
            self._last = _read(path)
            directory = _directory_of(Path(path))
            self._task = loop.create_task(self._watch(Path(path), directory))

    async def stop(self) -> None:
        """Remove the handler and stop watching."""
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup = False
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    def _on_sighup(self) -> None:
        logger.info("SIGHUP received: reloading the policy")
        self.service.reload()

    async def _watch(self, path: Path, directory: Path) -> None:
        from watchfiles import Change, awatch

        logger.info("watching %s for policy changes", path)
        # Only the policy file itself, or a ConfigMap's `..data` symlink swap,
        # counts: other files in the directory (logs) must not wake us.
        names = {path.name, "..data"}

        def relevant(_change: Change, changed: str) -> bool:
            return Path(changed).name in names

        # watchfiles logs every batch of changes at INFO.
        logging.getLogger("watchfiles.main").setLevel(logging.WARNING)
        try:
            async for _changes in awatch(
                directory,
                stop_event=self._stop,
                debounce=self.debounce_ms,
                watch_filter=relevant,
                recursive=False,
            ):
                current = _read(path)
                if current is None or current == self._last:
                    continue
                self._last = current
                logger.info("policy file %s changed: reloading", path)
                self.service.reload()
        except Exception as exc:  # noqa: BLE001 - the router outlives its watcher
            logger.error(
                "policy file watch stopped (%s); SIGHUP still reloads",
                type(exc).__name__,
            )


def _directory_of(path: Path) -> Path:
    return path.resolve().parent


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
