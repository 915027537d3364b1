"""A short, bounded memory of the last errors of one part, for /status's "Last errors".

    errors = RecentErrors(capacity=20)
    errors.record(clock.time(), "telegram", "chat 42: Bad Request: chat not found")
    for e in errors.latest(3):        # newest first
        print(e.at, e.source, e.text)

Texts are cut to ``MAX_TEXT`` characters; they are raw (render them escaped).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MAX_TEXT = 300


@dataclass(frozen=True)
class RecentError:
    at: float
    source: str
    text: str


class RecentErrors:
    def __init__(self, capacity: int = 20) -> None:
        self._items: deque[RecentError] = deque(maxlen=capacity)

    def record(self, at: float, source: str, text: str) -> None:
        self._items.append(RecentError(float(at), source, str(text)[:MAX_TEXT]))

    def latest(self, n: int | None = None, *, since: float | None = None) -> list[RecentError]:
        """Newest first; at most ``n``; only those at or after ``since`` when given."""
        items = [e for e in reversed(self._items) if since is None or e.at >= since]
        return items if n is None else items[:n]

    def __len__(self) -> int:
        return len(self._items)
