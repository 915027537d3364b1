"""Escalation chains: what happens, and when, to an incident nobody acknowledged.

One chain per severity, from settings (``ALERT_ESCALATION_INFO`` / ``_WARNING`` / ``_CRITICAL``):
comma-separated ``<delay>:<action>`` steps, each delay counted from when the incident opened
(or was re-armed), in increasing order; an empty chain never escalates::

    chain = parse_chain("15m:chat,30m:dm,60m:escalation_chat,90m:webhook")
    chain[1]            # Step(offset_s=1800.0, action='dm')
    gap_before(chain, 1)   # 900.0: the wait between step 0 and step 1

Actions: ``chat`` (a ping in the alert chat mentioning every admin), ``dm`` (a direct message
to each admin in ``TELEGRAM_ADMIN_IDS``), ``escalation_chat`` (the incident posted to
``TELEGRAM_ESCALATION_CHAT_ID``), ``webhook`` (JSON POSTed to ``ESCALATION_WEBHOOK_URL``).
"""
from __future__ import annotations

from dataclasses import dataclass

from app.durations import parse_duration

ACTIONS = ("chat", "dm", "escalation_chat", "webhook")
EXAMPLE = "15m:chat,30m:dm,60m:escalation_chat,90m:webhook"


@dataclass(frozen=True)
class Step:
    offset_s: float
    action: str


def parse_chain(text: str | None, *, setting: str = "chain") -> tuple[Step, ...]:
    """Parse a chain; raises ``ValueError`` naming ``setting``, the bad part and an example."""
    steps: list[Step] = []
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        delay, sep, action = part.partition(":")
        action = action.strip().lower()
        if not sep or action not in ACTIONS:
            raise ValueError(f"{setting}: {part[:40]!r} is not <delay>:<action> with an action among "
                             f"{', '.join(ACTIONS)}; e.g. {EXAMPLE}")
        try:
            offset = parse_duration(delay, min_s=0.0)
        except ValueError as err:
            raise ValueError(f"{setting}: {err}; e.g. {EXAMPLE}") from None
        if steps and offset < steps[-1].offset_s:
            raise ValueError(f"{setting}: step {part!r} comes before the step ahead of it; delays count from "
                             f"the opening and must not decrease; e.g. {EXAMPLE}")
        steps.append(Step(offset, action))
    return tuple(steps)


def gap_before(chain: tuple[Step, ...], index: int) -> float:
    """The wait before step ``index`` once the previous one ran (or the chain was armed)."""
    if index <= 0:
        return chain[0].offset_s
    return chain[index].offset_s - chain[index - 1].offset_s
