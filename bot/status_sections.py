"""The seam through which packages add sections to /status.

/status renders ONE ``MonitoringSnapshot`` (``monitoring/snapshot.py``: what the last collection
cycle measured), so every section agrees with the others, with the status line, ``/readyz`` and
``/metrics``. A section provider is ``async (ctx, snapshot, now) -> str`` returning Telegram HTML
(escape dynamic values with ``delivery.html.esc``); it reads the snapshot, never the database.
A failing provider shows as "unavailable" and never breaks the rest of /status.

Parts that keep a ``app.recent_errors.RecentErrors`` (Telegram delivery, bot handlers) add it
as an error source; "Last errors" shows them beside the failed fetches::

    sections = default_sections()                 # the pipeline section
    sections.add("monitoring", monitoring_section, order=20)
    sections.add_error_source("telegram", sender.stats.recent_errors)
    build_dispatcher(ctx, status_sections=sections)
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.recent_errors import RecentErrors
from bot.context import BotContext
from bot.views.status import render_pipeline_section, render_pipeline_unavailable, render_section_error
from monitoring.snapshot import MonitoringSnapshot

log = logging.getLogger(__name__)

StatusSection = Callable[[Any, MonitoringSnapshot, float], Awaitable[str]]


@dataclass(frozen=True)
class _Entry:
    name: str
    provider: StatusSection
    order: int


class StatusSections:
    """An ordered set of named section providers, plus the error sources of "Last errors".

        sections = StatusSections()
        sections.add("pipeline", pipeline_section, order=10)
        texts = await sections.render_all(ctx, snapshot, now)
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self.error_sources: dict[str, RecentErrors] = {}
        self.failures = 0

    def add(self, name: str, provider: StatusSection, *, order: int = 100) -> None:
        """Add (or replace) the section called ``name``; lower ``order`` shows first."""
        self._entries[name] = _Entry(name, provider, order)

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def add_error_source(self, source: str, errors: RecentErrors) -> None:
        """Show ``errors`` (newest first, with their times) under "Last errors", labelled ``source``."""
        self.error_sources[source] = errors

    def names(self) -> list[str]:
        return [e.name for e in sorted(self._entries.values(), key=lambda e: (e.order, e.name))]

    async def render_all(self, ctx: BotContext, snapshot: MonitoringSnapshot, now: float) -> list[str]:
        out: list[str] = []
        for name in self.names():
            entry = self._entries[name]
            try:
                out.append(await entry.provider(ctx, snapshot, now))
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
                self.failures += 1
                log.exception("status section %s failed", name)
                out.append(render_section_error(name, exc))
        return out


async def pipeline_section(ctx: BotContext, snapshot: MonitoringSnapshot, now: float) -> str:
    """Counts by status, successful and failed checks per minute over the rate window, backlog and
    activations over the activation window."""
    if snapshot.pipeline is None:
        return render_pipeline_unavailable(snapshot)
    return render_pipeline_section(snapshot.pipeline, snapshot.rate_window_s)


def default_sections() -> StatusSections:
    sections = StatusSections()
    sections.add("pipeline", pipeline_section, order=10)
    return sections
