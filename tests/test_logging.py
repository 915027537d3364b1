"""Logs: human-readable by default, JSON lines with LOG_FORMAT=json; a check's context travels along."""
from __future__ import annotations

import io
import json
import logging

from app.logging import setup_logging


def _emit(fmt: str) -> str:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    setup_logging(fmt, "INFO", stream=stream)
    try:
        logging.getLogger("tokens.processor").info(
            "monitoring -> active (%s)", "activated", extra={"mint": "Mint<b>&", "check_id": "abc123"})
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return stream.getvalue()


def test_json_lines_carry_mint_and_check_id():
    line = _emit("json").strip()
    record = json.loads(line)
    assert record["message"] == "monitoring -> active (activated)"
    assert record["mint"] == "Mint<b>&" and record["check_id"] == "abc123"
    assert record["level"] == "info" and record["logger"] == "tokens.processor"


def test_text_lines_are_readable_with_context():
    line = _emit("text")
    assert "monitoring -> active (activated)" in line
    assert "mint=Mint<b>&" in line and "check_id=abc123" in line
