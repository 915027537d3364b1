"""Momentum score 0..100 of a token from its pools. Pure functions.

The score is a weighted sum of four components, each in 0..1, computed over all of the
token's usable pairs (transactions and volume summed across pools)::

    score = 100 * (0.35 * tx_acceleration + 0.30 * volume_momentum
                   + 0.15 * freshness + 0.20 * buy_pressure)

- ``tx_acceleration``: r / (r + 1) with r = txns(m5) / max(txns(h1) / 12, 1). A steady
  token (m5 = the average 5 minutes of the hour) scores 0.5; a burst approaches 1; none is 0.
- ``volume_momentum``: the same shape on USD volume: r = vol(m5) / max(vol(h1) / 12, 1).
- ``freshness``: exp(-age_h / 6) with age from the oldest pool's ``pairCreatedAt``
  (1 at birth, 0.37 after 6 h); 0.5 when no pool says when it was created.
- ``buy_pressure``: buys / (buys + sells) over m5 (h1 when m5 had no trades); 0 without trades.

A dead, old token scores near 0; a fresh token with accelerating, buy-heavy trading near 100.
The stored score is smoothed with an EWMA (``SCORE_EWMA_ALPHA``)::

    s = score_pairs(pairs, now)            # ScoreBreakdown(score=..., components={...})
    smoothed = ewma(previous, s.score, alpha=0.3)
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tokens.pairs import Pair

WEIGHTS = {"tx_acceleration": 0.35, "volume_momentum": 0.30, "freshness": 0.15, "buy_pressure": 0.20}
FRESHNESS_TAU_H = 6.0


@dataclass(frozen=True)
class ScoreBreakdown:
    score: float
    components: dict[str, float]


def _saturate(ratio: float) -> float:
    if math.isnan(ratio) or ratio <= 0:
        return 0.0
    return 1.0 if math.isinf(ratio) else ratio / (ratio + 1.0)


def tx_acceleration(m5: float, h1: float) -> float:
    return _saturate(m5 / max(h1 / 12.0, 1.0))


def volume_momentum(m5: float, h1: float) -> float:
    return _saturate(m5 / max(h1 / 12.0, 1.0))


def freshness(created_at: float | None, now: float) -> float:
    if created_at is None:
        return 0.5
    age_h = max(0.0, now - created_at) / 3600.0
    return math.exp(-age_h / FRESHNESS_TAU_H)


def buy_pressure(buys: int, sells: int) -> float:
    total = buys + sells
    return buys / total if total > 0 else 0.0


def score_pairs(pairs: Sequence[Pair], now: float) -> ScoreBreakdown:
    """Score a token from its usable pairs (an empty list scores 0)."""
    if not pairs:
        return ScoreBreakdown(0.0, {name: 0.0 for name in WEIGHTS})
    m5 = [p.txns_in("m5") for p in pairs]
    h1 = [p.txns_in("h1") for p in pairs]
    tx_m5 = sum(t.total for t in m5)
    tx_h1 = sum(t.total for t in h1)
    buys, sells = sum(t.buys for t in m5), sum(t.sells for t in m5)
    if buys + sells == 0:
        buys, sells = sum(t.buys for t in h1), sum(t.sells for t in h1)
    created = [p.pair_created_at for p in pairs if p.pair_created_at is not None]
    components = {
        "tx_acceleration": tx_acceleration(tx_m5, tx_h1),
        "volume_momentum": volume_momentum(sum(p.volume_in("m5") for p in pairs),
                                           sum(p.volume_in("h1") for p in pairs)),
        "freshness": freshness(min(created) if created else None, now),
        "buy_pressure": buy_pressure(buys, sells),
    }
    score = 100.0 * sum(WEIGHTS[name] * value for name, value in components.items())
    return ScoreBreakdown(round(min(100.0, max(0.0, score)), 3), components)


def ewma(previous: float | None, value: float, alpha: float) -> float:
    """Exponentially weighted moving average; the first value stands alone."""
    if previous is None or not math.isfinite(previous):
        return value
    return alpha * value + (1.0 - alpha) * previous
