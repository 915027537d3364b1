"""The one percentile definition: nearest rank, exactly as PostgreSQL's ``percentile_disc``.

The ``p`` percentile (``p`` in 0..1) of ``n`` sorted values is the value at 1-based rank
``ceil(p * n)`` (rank 1 for ``p = 0``): the smallest value with at least ``p`` of the values
at or below it. It is always one of the observed values (a latency that really happened, not
an interpolation). ``p * n`` is computed in double precision like PostgreSQL does, so Python and
SQL agree to the row (``monitoring/pipeline/percentiles.py`` builds the SQL: ``percentile_disc``
on PostgreSQL, ``ORDER BY ... LIMIT 1 OFFSET nearest_rank_index(n, p)`` on SQLite)::

    >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.5)
    3.0
    >>> percentile([10.0] * 19 + [1000.0], 0.95)     # 19 of 20 took 10: p95 is 10, not the outlier
    10.0
    >>> percentile([], 0.95) is None
    True
"""
from __future__ import annotations

import math
from collections.abc import Sequence


def nearest_rank_index(n: int, p: float) -> int:
    """The 0-based index of the ``p`` percentile among ``n`` sorted values (``n >= 1``)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"percentile must be within 0..1, got {p!r}")
    return min(n, max(1, math.ceil(p * n))) - 1


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """The ``p`` (0..1) percentile of already sorted values by nearest rank; ``None`` when empty."""
    if not sorted_values:
        return None
    return float(sorted_values[nearest_rank_index(len(sorted_values), p)])


def median(values: Sequence[float]) -> float | None:
    """``percentile(sorted(values), 0.5)``: the lower middle value for an even count."""
    return percentile(sorted(values), 0.5)
