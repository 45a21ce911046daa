"""Logging setup: plain text for people, one JSON object per line for log pipelines.

One `logging.config.dictConfig` mapping (`logging_config`) configures the CLI
process, every granian worker and granian's own loggers (`_granian`,
`granian.access`), so in json mode every line the service writes is one JSON
object. Values passed with `extra=` (path, field, reason, counts) become JSON
keys. The `feedservice.reload` logger carries the per-reload summary and the
bad-file lines; only the loader writes them, once per reload.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import threading
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
RELOAD_LOGGER = "feedservice.reload"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # One line, whatever the message holds: json.dumps escapes newlines.
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(fmt: str = "text", level: str = "info") -> dict[str, Any]:
    """The dictConfig for our process, granian's main process and its workers."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, got {fmt!r}")
    formatter: dict[str, Any] = (
        {"()": "feedservice.runtime.logs.JsonFormatter"}
        if fmt == "json"
        else {"format": TEXT_FORMAT}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    level_name = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level_name},
        "loggers": {
            # granian's start-up chatter only when debugging: the loader says once where the
            # service serves, and what, when its first load is in.
            "_granian": {
                "handlers": ["main"],
                "level": level_name if level == "debug" else "WARNING",
                "propagate": False,
            },
            "granian.access": {"handlers": ["main"], "level": "INFO", "propagate": False},
            "apscheduler": {"level": "WARNING"},
        },
    }


def setup_logging(fmt: str = "text", level: str | int = "info") -> None:
    """Configure this process (forked granian workers inherit it).

    json mode also routes `warnings` and uncaught exceptions through logging,
    so even a crash's traceback arrives as one JSON object.
    """
    if isinstance(level, int):
        level = logging.getLevelName(level).lower()
    logging.config.dictConfig(logging_config(fmt, level))
    logging.captureWarnings(fmt == "json")
    if fmt == "json":
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: Any, value: Any, traceback: Any) -> None:
    logging.getLogger("feedservice").critical(
        "uncaught exception", exc_info=(kind, value, traceback)
    )


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("feedservice").error(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
    )
