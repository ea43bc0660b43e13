"""Logging set-up for the entry points: JSON lines on stdout."""

from __future__ import annotations

import logging
import sys
import time

import orjson


class JSONFormatter(logging.Formatter):
    """One JSON object per line; access records are already JSON."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "llm_router.access":
            return message
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "INFO", *, access_log: bool = True) -> None:
    """Route every logger to stdout as JSON lines; call once per process."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access = logging.getLogger("llm_router.access")
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    # uvicorn's own access log would repeat ours with the client address.
    logging.getLogger("uvicorn.access").disabled = True
