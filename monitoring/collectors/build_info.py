"""The running build as a metric, in the Prometheus ``*_build_info`` manner.

    registry.register(BuildInfoCollector())
    # tokenwatch_build_info{python="3.11.7",version="0.1.0"} 1
"""
from __future__ import annotations

from app.build_info import build_info
from monitoring import metric_names as m
from monitoring.sample import Sample


class BuildInfoCollector:
    """Collector ``build_info``: always one sample of value 1; the labels carry the facts."""

    name = "build_info"

    def __init__(self, info: dict[str, str] | None = None) -> None:
        self.info = dict(info or build_info())

    async def collect(self, now: float) -> list[Sample]:
        return [Sample(m.BUILD_INFO, 1.0, self.info)]
