"""Logging: human-readable by default, JSON lines with ``LOG_FORMAT=json``.

Context such as ``mint`` and ``check_id`` is passed with ``extra=`` and shows in both
formats, so one token's story can be followed through the logs::

    log.info("check passed", extra={"mint": mint, "check_id": check_id})
"""
from __future__ import annotations

import json
import logging
import sys
import time

CONTEXT_FIELDS = ("mint", "check_id", "job_id", "chat_id", "endpoint", "user_id")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None) is not None)
        return f"{line} [{ctx}]" if ctx else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def setup_logging(fmt: str = "text", level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "aiogram.event", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # APScheduler warns on every skipped or missed tick; app.scheduler counts those and logs a
    # summary on change instead, and every job body's own errors are caught and logged there.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
