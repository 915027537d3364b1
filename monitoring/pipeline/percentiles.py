"""Percentiles the way PostgreSQL's ``percentile_cont`` computes them.

Both dialects must report the same figure, so the Python side interpolates
linearly between the order statistics at position ``p * (n - 1)``, exactly like
``percentile_cont(p) WITHIN GROUP (ORDER BY x)``::

    >>> percentile_cont([10.0, 20.0, 30.0, 40.0], 0.5)
    25.0
    >>> percentile_cont([], 0.95) is None
    True
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile_cont(sorted_values: Sequence[float], p: float) -> float | None:
    """The ``p`` (0..1) percentile of already sorted values; ``None`` when empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"percentile must be within 0..1, got {p!r}")
    pos = p * (n - 1)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(sorted_values[lo])
    frac = pos - lo
    return float(sorted_values[lo]) + (float(sorted_values[hi]) - float(sorted_values[lo])) * frac


@dataclass(frozen=True)
class Distribution:
    """Count, p50, p95 and max of a set of durations in seconds.

        d = Distribution.of([1.0, 2.0, 3.0])
        assert (d.count, d.p50, d.max) == (3, 2.0, 3.0)
    """

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> "Distribution":
        ordered = sorted(float(v) for v in values)
        if not ordered:
            return cls()
        return cls(len(ordered), percentile_cont(ordered, 0.5), percentile_cont(ordered, 0.95), ordered[-1])
