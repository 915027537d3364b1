"""Counters of the pipeline that are not per endpoint or per stage.

    counters = PipelineCounters()
    counters.garbage += 1
    counters.malformed_pairs["no_pair_address"] += 1
    counters.as_dict()   # {"garbage": 1, "malformed_pairs": {"no_pair_address": 1}, ...}
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PipelineCounters:
    """Cumulative counts since start; the monitoring package turns them into rates."""

    discovered: int = 0  # new tokens inserted
    duplicates: int = 0  # discovery events for mints already known
    garbage: int = 0  # unusable discovery messages (non-JSON, no/invalid mint)
    malformed_pairs: Counter[str] = field(default_factory=Counter)  # skipped pairs by reason
    checks: int = 0  # checks written
    check_failures: int = 0  # checks whose fetch failed
    batch_failures: int = 0  # batch requests that failed (after their retries)
    write_failures: int = 0  # checks that could not be written even alone (see tokens.repository)
    quarantined: int = 0  # tokens quarantined after QUARANTINE_AFTER_WRITE_FAILURES such failures in a row
    transitions: Counter[str] = field(default_factory=Counter)  # by reason
    discovered_by_source: Counter[str] = field(default_factory=Counter)
    #: epoch seconds discovery last saw a valid mint (new or already known), by source
    last_seen_at: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "discovered": self.discovered,
            "duplicates": self.duplicates,
            "garbage": self.garbage,
            "malformed_pairs": dict(self.malformed_pairs),
            "checks": self.checks,
            "check_failures": self.check_failures,
            "batch_failures": self.batch_failures,
            "write_failures": self.write_failures,
            "quarantined": self.quarantined,
            "transitions": dict(self.transitions),
            "discovered_by_source": dict(self.discovered_by_source),
        }
