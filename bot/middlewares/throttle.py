"""Per-user rate limit for commands and button presses.

A user may send ``limit`` commands (and presses) per ``window_s`` seconds; past
that, updates are dropped, with one short "Slow down" reply per window (button
presses always get a quick answer so the client's spinner stops).

    throttle = ThrottleMiddleware(settings.command_rate_limit_per_min, clock)
    dp.message.outer_middleware(throttle)
    dp.callback_query.outer_middleware(throttle)
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from app.clock import Clock

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
MAX_TRACKED_USERS = 10_000


class ThrottleMiddleware(BaseMiddleware):
    """Sliding-window limiter keyed by user id; ``dropped`` counts throttled updates."""

    def __init__(self, limit: int, clock: Clock, window_s: float = 60.0) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.dropped = 0
        self._hits: dict[int, deque[float]] = {}
        self._warned_at: dict[int, float] = {}

    def allow(self, user_id: int) -> bool:
        """Record one attempt by ``user_id``; False when over the limit."""
        now = self.clock.monotonic()
        hits = self._hits.get(user_id)
        if hits is None:
            if len(self._hits) >= MAX_TRACKED_USERS:
                self._prune(now)
            hits = self._hits[user_id] = deque()
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def should_warn(self, user_id: int) -> bool:
        """True at most once per window per user."""
        now = self.clock.monotonic()
        last = self._warned_at.get(user_id)
        if last is not None and now - last < self.window_s:
            return False
        self._warned_at[user_id] = now
        return True

    def _prune(self, now: float) -> None:
        for uid in [u for u, h in self._hits.items() if not h or now - h[-1] >= self.window_s]:
            self._hits.pop(uid, None)
            self._warned_at.pop(uid, None)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = getattr(event, "from_user", None)
        if user is None or data.get("trusted_role") is not None:
            return await handler(event, data)
        if isinstance(event, Message) and not (event.text or event.caption or "").startswith("/"):
            return await handler(event, data)  # plain chatter is not a command
        if self.allow(user.id):
            return await handler(event, data)
        self.dropped += 1
        warn = self.should_warn(user.id)
        if warn:
            log.info("throttling user %s (over %d per %.0fs)", user.id, self.limit, self.window_s)
        text = f"Slow down: at most {self.limit} commands per minute."
        try:
            if isinstance(event, CallbackQuery):
                await event.answer(text if warn else None)
            elif isinstance(event, Message) and warn:
                await event.answer(text, parse_mode=None)
        except Exception as exc:  # noqa: BLE001
            log.info("could not send slow-down notice: %s", exc)
        return None
