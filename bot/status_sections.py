"""The seam through which packages add sections to /status.

A section provider is ``async (ctx, session, now) -> str`` returning Telegram HTML
(escape dynamic values with ``delivery.html.esc``). A failing provider shows as
"unavailable" and never breaks the rest of /status.

    sections = default_sections()                 # the pipeline section
    sections.add("monitoring", monitoring_section, order=20)
    build_dispatcher(ctx, status_sections=sections)
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.views.status import render_pipeline_section, render_section_error
from tokens.queries import pipeline_summary

log = logging.getLogger(__name__)

StatusSection = Callable[[Any, AsyncSession, float], Awaitable[str]]


@dataclass(frozen=True)
class _Entry:
    name: str
    provider: StatusSection
    order: int


class StatusSections:
    """An ordered set of named section providers.

        sections = StatusSections()
        sections.add("pipeline", pipeline_section, order=10)
        texts = await sections.render_all(ctx, session, now)
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self.failures = 0

    def add(self, name: str, provider: StatusSection, *, order: int = 100) -> None:
        """Add (or replace) the section called ``name``; lower ``order`` shows first."""
        self._entries[name] = _Entry(name, provider, order)

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return [e.name for e in sorted(self._entries.values(), key=lambda e: (e.order, e.name))]

    async def render_all(self, ctx: Any, session: AsyncSession, now: float) -> list[str]:
        out: list[str] = []
        for name in self.names():
            entry = self._entries[name]
            try:
                out.append(await entry.provider(ctx, session, now))
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
                self.failures += 1
                log.exception("status section %s failed", name)
                out.append(render_section_error(name, exc))
                try:
                    await session.rollback()  # PostgreSQL aborts the transaction on error
                except Exception:  # noqa: BLE001
                    pass
        return out


async def pipeline_section(ctx: Any, session: AsyncSession, now: float) -> str:
    """Counts by status, successful and failed checks per minute, backlog and activations in the last hour."""
    return render_pipeline_section(await pipeline_summary(session, now))


def default_sections() -> StatusSections:
    sections = StatusSections()
    sections.add("pipeline", pipeline_section, order=10)
    return sections
