"""Actions that matter, told in the alert chat: grouped, one message per window, edited in place.

    announcer = Announcer(outbox, clock, chat_id=-100123, window_s=300)
    ledger.on_written(announcer.announce)        # called with what each flush wrote that matters
    announcer.buttons = bot_factory              # the bot's signed Revert buttons (RevertButtons)
    announcer.quiet = lambda now: in_maintenance(now)   # held while notifications are muted

The first action that matters opens a window: one message in the chat (through the outbox); the
ones that follow within ``window_s`` are added to it by editing it (the outbox supersedes older
pending edits, so a burst costs one edit). Each revertible knob change gets a Revert button; a
revert shows as done in the line it undid. Which actions matter: ``recovery.ledger.matters``.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from app.clock import Clock
from delivery.html import bold, code, esc, italic
from delivery.models import INFO
from delivery.store import Outbox, OutboxError
from recovery.ledger_queries import ActionView

log = logging.getLogger(__name__)

MAX_LINES = 25        # lines shown in one message (the rest are counted)
MAX_BUTTONS = 20
MAX_LINE = 300        # characters of one line's plain text


class RevertButtons(Protocol):
    """The bot's signed Revert buttons as a JSON-able ``reply_markup`` dict (None: no buttons)."""

    def revert_actions(self, actions: Sequence[tuple[int, str]]) -> dict[str, Any] | None: ...


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%H:%M:%S")


_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"))


def _one_line(text: str, n: int) -> str:
    """One display line (no line breaks, no bidi controls: an operator's name is untrusted), cut to ``n``."""
    flat = " ".join(text.translate(_BIDI).split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def action_line(v: ActionView) -> str:
    """One action as a line of Telegram HTML (every dynamic part escaped)."""
    icon = "👤" if not v.automatic else ("🧹" if v.knob is None else "🔧")
    text = f"{icon} {code(_clock(v.at))} {code(f'#{v.id}')} {esc(_one_line(v.describe(), MAX_LINE))}"
    if v.reverted_at is not None:
        text += f" — {italic('reverted by ' + _one_line(v.reverted_by or 'an operator', 64))}"
    return text


def render_announcement(entries: Sequence[ActionView], started_at: float) -> str:
    lines = [f"🛠 {bold('Self-healing')} · actions since {esc(_clock(started_at))} UTC ({len(entries)})"]
    lines += [action_line(v) for v in entries[-MAX_LINES:]]
    if len(entries) > MAX_LINES:
        lines.insert(1, italic(f"… {len(entries) - MAX_LINES} earlier in this window (see /tune)"))
    lines.append(italic("↩ Revert puts a knob back where it was (admins); /tune shows every control."))
    return "\n".join(lines)


def revert_choices(entries: Sequence[ActionView]) -> list[tuple[int, str]]:
    """The newest revertible knob changes, as (action id, button label)."""
    choices = [(v.id, f"#{v.id} {v.knob}") for v in entries if v.revertible and v.knob is not None]
    return choices[-MAX_BUTTONS:]


@dataclasses.dataclass
class _Window:
    key: str
    started_at: float
    entries: list[ActionView]
    revision: int = 0


class Announcer:
    def __init__(self, outbox: Outbox, clock: Clock, *, chat_id: int | None, window_s: float = 300.0,
                 buttons: RevertButtons | None = None) -> None:
        self.outbox = outbox
        self.clock = clock
        self.chat_id = chat_id
        self.window_s = window_s
        self.buttons = buttons
        self.quiet: Callable[[float], bool] | None = None   # True while notifications are muted (maintenance)
        self.held = 0        # actions not told because the chat was quiet (they stay in the ledger and /tune)
        self.messages = 0    # windows opened
        self.edits = 0
        self._window: _Window | None = None

    def _markup(self, entries: Sequence[ActionView]) -> dict[str, Any] | None:
        if self.buttons is None:
            return None
        try:
            return self.buttons.revert_actions(revert_choices(entries))
        except Exception:  # noqa: BLE001 - a message without buttons beats no message
            log.exception("revert buttons failed")
            return None

    async def announce(self, views: list[ActionView]) -> None:
        """Add ``views`` (actions that matter, just written) to the open window's message, or open one."""
        if not views or self.chat_id is None:
            return
        now = self.clock.time()
        if self.quiet is not None and self.quiet(now):
            self.held += len(views)
            return
        w = self._window
        if w is not None and now - w.started_at < self.window_s:
            reverted = {v.revert_of: v for v in views if v.revert_of is not None}
            w.entries = [dataclasses.replace(e, reverted_at=reverted[e.id].at, reverted_by=reverted[e.id].actor)
                         if e.id in reverted else e for e in w.entries] + views
            w.revision += 1
            try:
                await self.outbox.enqueue_edit(self.chat_id, target_key=w.key, key=f"{w.key}:e{w.revision}",
                                               text=render_announcement(w.entries, w.started_at),
                                               reply_markup=self._markup(w.entries))
                self.edits += 1
            except OutboxError:
                log.exception("could not queue the actions message's edit")
            return
        w = self._window = _Window(f"recovery:actions:{int(now)}:{views[0].id}", now, list(views))
        try:
            await self.outbox.enqueue(self.chat_id, render_announcement(w.entries, now), key=w.key, priority=INFO,
                                      reply_markup=self._markup(w.entries))
            self.messages += 1
        except OutboxError:
            log.exception("could not queue the actions message")
