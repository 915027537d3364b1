"""Sender-side pacing under Telegram's flood limits: global, per chat, per group.

The outbox never relies on 429s to find the limits: it spaces its own messages.
Per chat: one message every ``1/chat_per_s`` seconds. Groups (negative chat ids)
additionally: at most ``group_per_min`` messages in any rolling 60 s. Globally: one
message every ``1/global_per_s`` seconds. A 429 from Telegram puts a hold on the chat
(or on everything) for its ``retry_after``::

    pacer = Pacer(clock, global_per_s=30, chat_per_s=1, group_per_min=20)
    wait = pacer.ready_in(chat_id)       # 0.0 -> may send now
    if wait == 0:
        pacer.reserve(chat_id)           # count the message being sent now
    pacer.hold_chat(chat_id, 3.0)        # after "429 retry after 3"
"""
from __future__ import annotations

from collections import deque

from app.clock import SYSTEM_CLOCK, Clock
from app.settings import Settings

GROUP_WINDOW_S = 60.0


class Pacer:
    """Earliest-allowed-time bookkeeping on ``clock.monotonic()``.

    ``window_margin_s`` is added to the group window so that a message arriving a few
    milliseconds early (network jitter) is still outside Telegram's rolling minute.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK, *, global_per_s: float = 30.0, chat_per_s: float = 1.0,
                 group_per_min: float = 20.0, window_margin_s: float = 0.25) -> None:
        if global_per_s <= 0 or chat_per_s <= 0 or group_per_min <= 0:
            raise ValueError("rates must be positive")
        self.clock = clock
        self.global_gap = 1.0 / global_per_s
        self.chat_gap = 1.0 / chat_per_s
        self.group_per_min = max(1, int(group_per_min))
        self.window_margin_s = window_margin_s
        self._next_global = float("-inf")
        self._global_hold_until = float("-inf")
        self._next_chat: dict[int, float] = {}
        self._chat_hold_until: dict[int, float] = {}
        self._group_sends: dict[int, deque[float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> "Pacer":
        return cls(clock, global_per_s=settings.outbox_global_per_s, chat_per_s=settings.outbox_chat_per_s,
                   group_per_min=settings.outbox_group_per_min)

    def ready_in(self, chat_id: int) -> float:
        """Seconds until a message to ``chat_id`` may go out (0.0: now)."""
        now = self.clock.monotonic()
        earliest = max(
            self._next_global,
            self._global_hold_until,
            self._next_chat.get(chat_id, float("-inf")),
            self._chat_hold_until.get(chat_id, float("-inf")),
        )
        if chat_id < 0:
            sends = self._group_sends.get(chat_id)
            if sends:
                while sends and sends[0] <= now - GROUP_WINDOW_S - self.window_margin_s:
                    sends.popleft()
                if len(sends) >= self.group_per_min:
                    earliest = max(earliest, sends[-self.group_per_min] + GROUP_WINDOW_S + self.window_margin_s)
        return max(0.0, earliest - now)

    def reserve(self, chat_id: int) -> None:
        """Count one message to ``chat_id`` as sent now."""
        now = self.clock.monotonic()
        self._next_global = now + self.global_gap
        self._next_chat[chat_id] = now + self.chat_gap
        if chat_id < 0:
            self._group_sends.setdefault(chat_id, deque()).append(now)

    def hold_chat(self, chat_id: int, seconds: float) -> None:
        """Send nothing to ``chat_id`` for ``seconds`` (Telegram said "retry after")."""
        until = self.clock.monotonic() + max(0.0, seconds)
        self._chat_hold_until[chat_id] = max(self._chat_hold_until.get(chat_id, until), until)

    def hold_all(self, seconds: float) -> None:
        """Send nothing anywhere for ``seconds``."""
        self._global_hold_until = max(self._global_hold_until, self.clock.monotonic() + max(0.0, seconds))

    def forget(self, chat_id: int) -> None:
        """Drop the state of an idle chat (keeps memory bounded with many chats)."""
        now = self.clock.monotonic()
        if self._next_chat.get(chat_id, now) <= now and self._chat_hold_until.get(chat_id, now) <= now:
            self._next_chat.pop(chat_id, None)
            self._chat_hold_until.pop(chat_id, None)
            sends = self._group_sends.get(chat_id)
            if sends is not None and (not sends or sends[-1] <= now - GROUP_WINDOW_S - self.window_margin_s):
                self._group_sends.pop(chat_id, None)
