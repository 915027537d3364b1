"""The metric store's table.

One row per (name, labels, resolution, ts). ``resolution`` is 0 for raw samples,
60 for 1-minute and 3600 for 1-hour rollups; rollup rows carry avg in ``value``
plus ``min_value``, ``max_value`` and ``count``.
"""
from __future__ import annotations

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

RAW = 0
MINUTE = 60
HOUR = 3600


class MetricSample(SQLModel, table=True):
    __tablename__ = "metric_samples"
    __table_args__ = (
        Index("ix_metric_samples_name_res_ts", "name", "resolution", "ts"),
        Index("ix_metric_samples_res_ts", "resolution", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=96)
    labels: str = Field(default="", max_length=256)  # canonical "k=v,k=v", sorted by key
    resolution: int = RAW
    ts: float
    value: float
    min_value: float | None = None
    max_value: float | None = None
    count: int = 1
