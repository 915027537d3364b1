"""Shaded stretches of time on a picture's panels::

    Span(start, end, "pipeline stalled")                               # a 0/1 series was 1 (a Band)
    Span(start, end, "tokens breaker open", colour="tab:red")          # a state of a gauge (a Band)
    Span(start, end, "incident (critical)", kind=INCIDENT, severity="critical")
    Span(start, end, "maintenance", kind=MAINTENANCE)

Bands are per panel (``PanelData.spans``); incidents and maintenance windows are the whole
picture's (``ChartData.spans``) and shade every panel. The renderer draws all spans of one
legend as one collection; ``merge_spans`` joins the overlapping ones first.
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
    colour: str | None = None    # a band's state colour (default red)


def merge_spans(spans: list[Span]) -> list[Span]:
    """Overlapping or touching spans of one legend joined (kept in order of first start)::

        merge_spans([Span(0, 10, "a"), Span(5, 20, "a"), Span(30, 40, "a")])   # [0-20, 30-40]
    """
    out: list[Span] = []
    last: dict[str, Span] = {}
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        prev = last.get(span.legend)
        if prev is not None and span.start <= prev.end:
            prev.end = max(prev.end, span.end)
            continue
        merged = Span(span.start, span.end, span.legend, span.kind, span.severity, span.colour)
        out.append(merged)
        last[span.legend] = merged
    return out
