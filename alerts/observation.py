"""What one evaluation of one rule over one series found: the evaluator's output, the engine's input.

    obs = Observation(rule="api_slow", labels={"endpoint": "tokens"}, value=2.7, threshold=2.0,
                      breached=True, at=now, context={"endpoint": "tokens"})
    obs.fingerprint            # stable id of the series: the rule and its labels

``value`` is ``None`` when the series has no data in the window: the engine treats that as
"not breached" for resolution but never opens an alert on it. ``context`` holds the plain-text
extras a summary template may name (``{stage}``, ``{top_reasons}``, ``{eta}``...); the
renderer escapes every value.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property


def fingerprint_of(rule: str, labels: Mapping[str, str]) -> str:
    """A stable 16-hex id of one alert series (rule + sorted labels)."""
    raw = json.dumps([rule, sorted(labels.items())], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Observation:
    rule: str
    labels: Mapping[str, str]
    value: float | None
    threshold: float
    breached: bool
    at: float
    context: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint_of(self.rule, self.labels)
