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


def percentile_ranks(n: int, p: float) -> tuple[int, int, float]:
    """The 0-based ranks ``(lo, hi)`` whose values ``percentile_cont`` interpolates, and the weight
    of ``hi``: the p-th percentile of ``n`` sorted values is ``v[lo] + (v[hi] - v[lo]) * frac``.
    Lets a caller fetch just those two order statistics (e.g. ``LIMIT 2 OFFSET lo``)::

        >>> percentile_ranks(3, 0.95)
        (1, 2, 0.8999999999999999)
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"percentile must be within 0..1, got {p!r}")
    pos = p * (n - 1)
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return lo, hi, pos - lo


def interpolate(lo_value: float, hi_value: float, lo: int, hi: int, frac: float) -> float:
    """``percentile_cont``'s interpolation between the order statistics at ranks ``lo`` and ``hi``."""
    if lo == hi:
        return float(lo_value)
    return float(lo_value) + (float(hi_value) - float(lo_value)) * frac


def percentile_cont(sorted_values: Sequence[float], p: float) -> float | None:
    """The ``p`` (0..1) percentile of already sorted values; ``None`` when empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    lo, hi, frac = percentile_ranks(n, p)
    return interpolate(sorted_values[lo], sorted_values[hi], lo, hi, frac)


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
