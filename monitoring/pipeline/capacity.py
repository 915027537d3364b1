"""Capacity: how many tokens the API limit keeps on schedule, and whether the tracked ones exceed it.

A pure function over the cycle's ``PipelineSnapshot`` and the settings (no query of its own; the
arithmetic is ``app.capacity``)::

    cap = capacity_status(snapshot.pipeline, settings)
    cap.hot_served, cap.cold_served     # 1455, 6547 at 300 requests/min (every 10 s / every 45 s)
    cap.over                            # tokens are overdue and more are tracked than the limit serves hot

"Over capacity" is the backlog the processor cannot work off: tokens late by more than one
interval of their band (``LagReport.overdue``) while more tokens are tracked than the limit can
check at the hot interval. With fewer tokens than that, lateness is not capacity (the market is
failing, or the pipeline stalled) and is shown as lag and stall instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.capacity import tokens_served
from monitoring.pipeline.snapshot import PipelineSnapshot


@dataclass(frozen=True)
class CapacityStatus:
    api_rate_per_min: int
    hot_interval_s: float
    cold_interval_s: float
    hot_served: int  # tokens the limit checks every hot interval
    cold_served: int  # tokens the limit checks every cold interval
    tracked: int  # live tokens (monitoring + active)
    overdue: int  # due tokens late by more than one interval of their band

    @property
    def over(self) -> bool:
        return self.overdue > 0 and self.tracked > self.hot_served


def capacity_status(snap: PipelineSnapshot, settings: Any) -> CapacityStatus:
    """The capacity the settings' API limit gives, against the snapshot's tracked and overdue tokens."""
    rate = int(settings.api_rate_limit_per_min)
    headroom = float(settings.api_rate_headroom)
    hot_s, cold_s = float(settings.hot_check_interval_s), float(settings.cold_check_interval_s)
    return CapacityStatus(
        api_rate_per_min=rate, hot_interval_s=hot_s, cold_interval_s=cold_s,
        hot_served=tokens_served(rate, hot_s, headroom=headroom),
        cold_served=tokens_served(rate, cold_s, headroom=headroom),
        tracked=snap.live_tokens, overdue=snap.lag.overdue)
