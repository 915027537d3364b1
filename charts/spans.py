"""Shaded stretches of time on a picture's panels::

    Span(start, end, "pipeline stalled")                               # a 0/1 series was 1 (a Band)
    Span(start, end, "incident (critical)", kind=INCIDENT, severity="critical")
    Span(start, end, "maintenance", kind=MAINTENANCE)

Bands are per panel (``PanelData.spans``); incidents and maintenance windows are the whole
picture's (``ChartData.spans``) and shade every panel.
"""
from __future__ import annotations

from dataclasses import dataclass

BAND = "band"
INCIDENT = "incident"
MAINTENANCE = "maintenance"


@dataclass
class Span:
    start: float
    end: float
    legend: str
    kind: str = BAND
    severity: str | None = None  # for kind=INCIDENT
