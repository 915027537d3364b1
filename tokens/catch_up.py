"""The first pass after a (re)start, summed up in one line instead of one line per token.

Tokens that fell due while tokenwatch was stopped are all checked at once when it starts;
after a long stop many active ones are demoted together. Their transitions are logged at
DEBUG one by one and at INFO once, when the catch-up is over::

    restart: 37 tokens were due while stopped; demoted 12 active -> monitoring (9 no_pump_pool, 3 stale_data)

    catch_up = CatchUp.at_start(due_count)      # None when nothing was due
    if catch_up.take(outcome.transition):       # True: part of the catch-up (log it at DEBUG)
        ...
    if catch_up.over(queue_drained=True):
        log.info(catch_up.summary())

Claims go in due order, so the first ``due`` tokens checked after the start are the ones
that were due at the start.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from tokens.models import ACTIVE

Transition = tuple[str, str, str, "float | None"]


class CatchUp:
    def __init__(self, due: int) -> None:
        self.due = due
        self.checked = 0
        self.moves: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)  # (from, to) -> reasons

    @classmethod
    def at_start(cls, due: int) -> "CatchUp | None":
        return cls(due) if due > 0 else None

    def take(self, transition: Transition | None) -> bool:
        """Count one written check; True if it belongs to the catch-up (its transition is summed up)."""
        if self.checked >= self.due:
            return False
        self.checked += 1
        if transition is not None:
            frm, to, reason, _ = transition
            self.moves[(frm, to)][reason] += 1
        return True

    def over(self, *, queue_drained: bool) -> bool:
        """Every token due at the start was checked, or nothing is left to claim."""
        return self.checked >= self.due or queue_drained

    def summary(self) -> str:
        parts = []
        for (frm, to), reasons in sorted(self.moves.items(), key=lambda item: -sum(item[1].values())):
            verb = "demoted" if frm == ACTIVE else ("activated" if to == ACTIVE else "moved")
            detail = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
            parts.append(f"{verb} {sum(reasons.values())} {frm} -> {to} ({detail})")
        checked = "" if self.checked >= self.due else f" ({self.checked} checked so far)"
        were = "token was" if self.due == 1 else "tokens were"
        return (f"restart: {self.due} {were} due while stopped{checked}; "
                + ("; ".join(parts) if parts else "no status changed"))
