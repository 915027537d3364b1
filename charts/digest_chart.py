"""The chart of the day for the digest: processing and activations, drawn in the render worker.

``alerts.digest.Digest`` takes the picture through an injected callable (``alerts/`` never
imports ``charts/``); this is that callable::

    chart = DigestChart(ctx.metrics, worker, settings=ctx.settings)
    png = await chart(since, until)       # PNG bytes, or None when there is too little history
    digest = Digest(db, outbox, clock, chart=chart, ...)

The preset is not registered in ``PRESETS`` (it is not a /graph button); it reads the same
series as ``processing`` and ``activation``. Drawing happens in the worker's pool, in one slot
of its own (``DIGEST_SLOT``), so it never blocks the event loop nor takes a chat's slot.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from charts import units
from charts.data import NotEnoughData, fetch_window
from charts.presets import STALLED, Line, Panel, Preset
from charts.worker import RenderRefused, RenderWorker
from monitoring import metric_names as m
from monitoring.store import MetricStore

log = logging.getLogger(__name__)

DIGEST_SLOT = 0  # the worker's slot key for digests (no Telegram chat has id 0)
BUSY_RETRIES = 10
BUSY_WAIT_S = 1.0

DIGEST_PRESET = Preset("digest", "The day", "processing and activations over the digest's period", panels=(
    Panel("Checks per minute", units.PER_MINUTE,
          lines=(Line(m.CHECK_OUTCOMES_PER_MINUTE, "ok", labels={"outcome": "ok"}),
                 Line(m.CHECK_OUTCOMES_PER_MINUTE, "failed", labels={"outcome": "failed"})),
          bands=(STALLED,)),
    Panel("Discovered and activated per minute", units.PER_MINUTE,
          lines=(Line(m.TRANSITIONS_PER_MINUTE, "discovered", labels={"from": "none", "to": "monitoring"}),
                 Line(m.TRANSITIONS_PER_MINUTE, "activated", labels={"from": "monitoring", "to": "active"}))),
    Panel("Activation success rate", units.PERCENT,
          lines=(Line(m.ACTIVATION_SUCCESS_RATE, "tokens activated", scale=100.0),)),
))


def _span_name(seconds: float) -> str:
    hours = seconds / 3600.0
    return f"{hours:g} hours" if hours != 1 else "1 hour"


class DigestChart:
    """``chart(since, until) -> PNG | None`` for ``alerts.digest.Digest``."""

    def __init__(self, store: MetricStore, worker: RenderWorker, *, settings: Any = None,
                 preset: Preset = DIGEST_PRESET) -> None:
        self.store = store
        self.worker = worker
        self.settings = settings
        self.preset = preset
        self.drawn = 0
        self.last_series: list[str] = []

    async def __call__(self, since: float, until: float) -> bytes | None:
        data = await fetch_window(self.store, self.preset, since, until, range_name=_span_name(until - since),
                                  settings=self.settings)
        if isinstance(data, NotEnoughData):
            log.info("digest chart skipped: %s", data.message())
            return None
        for attempt in range(BUSY_RETRIES):
            try:
                with self.worker.slot(DIGEST_SLOT):
                    picture = await self.worker.draw(data)
                break
            except RenderRefused:  # another digest is drawing, or the queue is full: wait a little
                if attempt == BUSY_RETRIES - 1:
                    log.warning("digest chart skipped: the render worker stayed busy")
                    return None
                await asyncio.sleep(BUSY_WAIT_S)
        self.drawn += 1
        self.last_series = picture.series
        return picture.png
