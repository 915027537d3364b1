"""The shipped rules with every duration scaled down, for end-to-end runs in real time.

    path = scaled_rules_file(tmp_path / "rules.toml", factor=10)   # ALERT_RULES_FILE=path

The text of ``alerts/default_rules.toml`` is kept (groups, depends_on, severities, summaries,
relaxations, tuning bounds); only durations change: ``for``, ``keep_firing_for``, ``window``, ``lookback``
(also inside ``maintenance = {...}``) and a forecast's ``history``/``horizon``, each divided by
``factor`` with a floor of 1 s. Thresholds that are themselves elapsed seconds scale with them
(a forecast's predicted seconds, the market outage's failing seconds), and a tune range around
such a threshold scales too, so every rule still validates.
"""
from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

from alerts.rules import DEFAULT_RULES_FILE, load_rules
from app.durations import parse_duration

DURATION_KEYS = ("for", "keep_firing_for", "window", "lookback", "history", "horizon")
ELAPSED_SECONDS_RULES = frozenset({"market_api_down"})   # threshold = seconds of failing
_DURATION = re.compile(r'\b(' + "|".join(DURATION_KEYS) + r')(\s*=\s*)"([^"]+)"')
_THRESHOLD = re.compile(r"^threshold = ([0-9.]+)$", re.MULTILINE)


def _scaled(seconds: float, factor: float) -> float:
    return max(1.0, seconds / factor) if seconds > 0 else 0.0


def _fmt(seconds: float) -> str:
    return f"{seconds:g}s"


def scale_rules_text(text: str, factor: float) -> str:
    """The rules file's text with its durations (and elapsed-second thresholds) divided by ``factor``."""
    blocks = text.split("[[rule]]")
    out = [blocks[0]]
    for block in blocks[1:]:
        rule = tomllib.loads("[[rule]]" + block)["rule"][0]
        block = _DURATION.sub(
            lambda m: f'{m.group(1)}{m.group(2)}"{_fmt(_scaled(parse_duration(m.group(3), min_s=0.0), factor))}"',
            block)
        if rule.get("forecast") is not None or rule["name"] in ELAPSED_SECONDS_RULES:
            block = _THRESHOLD.sub(lambda m: f"threshold = {math.ceil(_scaled(float(m.group(1)), factor))}",
                                   block, count=1)
        out.append(block)
    return "[[rule]]".join(out)


def scaled_rules_file(path: Path, factor: float = 10.0, source: Path = DEFAULT_RULES_FILE) -> Path:
    """Write the scaled copy of ``source`` to ``path`` (validated by the real loader); returns ``path``."""
    path.write_text(scale_rules_text(source.read_text(encoding="utf-8"), factor), encoding="utf-8")
    load_rules(path)   # a scaled file that no longer validates is a bug of this helper
    return path
