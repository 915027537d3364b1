"""Arguments of the alert commands, split into what the alert layer is asked for.

The alert layer owns the rules of what is valid: durations are read with its parser and limits
(``alerts.quiet.parse_quiet_duration``, ``ALERT_SILENCE_MAX_S`` / ``ALERT_MAINTENANCE_MAX_S``)
and silence matchers are checked by ``QuietService.silence`` (``alerts/silences.py``); this module
only splits the words. Each parser returns what the command needs, or a :class:`Usage` (one
line: what is wrong, with an example) that the router answers with; nothing changes on a ``Usage``::

    parse_incident_id("12")                          # 12
    parse_incident_id("abc")                         # Usage("'abc' is not an incident number", "/ack 12 ...")
    parse_silence("rule=api_slow endpoint=tokens 2h deploy", max_s=settings.alert_silence_max_s)
        # SilenceArgs(matchers='rule=api_slow endpoint=tokens', duration_s=7200.0, reason='deploy')
    parse_maintenance("on 30m db upgrade", max_s=settings.alert_maintenance_max_s)
        # MaintenanceArgs('on', 1800.0, 'db upgrade')
"""
from __future__ import annotations

from dataclasses import dataclass

from alerts.quiet import MAINTENANCE_EXAMPLE, parse_quiet_duration
from alerts.silences import EXAMPLE as SILENCE_EXAMPLE

ACK_EXAMPLE = "/ack 12"
MAX_INCIDENT_ID = 2**62

__all__ = ["ACK_EXAMPLE", "MAINTENANCE_EXAMPLE", "SILENCE_EXAMPLE", "MaintenanceArgs", "SilenceArgs", "Usage",
           "parse_incident_id", "parse_maintenance", "parse_silence"]


@dataclass(frozen=True)
class Usage:
    """A one-line refusal of bad arguments, with an example of good ones (``example`` is empty
    when ``problem`` already ends with the alert layer's own example)."""

    problem: str
    example: str = ""


@dataclass(frozen=True)
class SilenceArgs:
    matchers: str       # as typed: 'rule=api_slow endpoint=tokens' (checked by the service)
    duration_s: float
    reason: str


@dataclass(frozen=True)
class MaintenanceArgs:
    action: str         # on | off | show
    duration_s: float = 0.0
    reason: str = ""


def _shown(word: str) -> str:
    return repr(word[:30] + ("…" if len(word) > 30 else ""))


def parse_incident_id(args: str | None) -> int | Usage:
    words = (args or "").split()
    if len(words) != 1:
        return Usage("Give one incident number", ACK_EXAMPLE + " (the numbers are in /alerts)")
    word = words[0].lstrip("#")
    if not word.isdigit() or not word.isascii() or int(word) <= 0 or int(word) > MAX_INCIDENT_ID:
        return Usage(f"{_shown(words[0])} is not an incident number", ACK_EXAMPLE + " (the numbers are in /alerts)")
    return int(word)


def _duration(word: str, *, max_s: float, example: str) -> float | Usage:
    try:
        return parse_quiet_duration(word, max_s=max_s, example=example)
    except ValueError as exc:
        return Usage(str(exc))


def parse_silence(args: str, *, max_s: float) -> SilenceArgs | Usage:
    """``<rule or matchers> <duration> [reason]``: the first word may be a bare rule name, the
    next ones are matchers while they hold an ``=`` (``name=value``, ``!=``, ``=~``, ``!~``)."""
    words = args.split()
    i = 0
    while i < len(words) and (("=" in words[i]) or (i == 0 and not words[i][:1].isdigit())):
        i += 1
    if i == 0:
        return Usage("say what to silence: a rule name or matchers", SILENCE_EXAMPLE)
    if i >= len(words):
        return Usage("say for how long", SILENCE_EXAMPLE)
    duration = _duration(words[i], max_s=max_s, example=SILENCE_EXAMPLE)
    if isinstance(duration, Usage):
        return duration
    return SilenceArgs(" ".join(words[:i]), duration, " ".join(words[i + 1:]))


def parse_maintenance(args: str | None, *, max_s: float) -> MaintenanceArgs | Usage:
    """``on <duration> [reason]``, ``off``, or nothing (show the state)."""
    words = (args or "").split()
    if not words:
        return MaintenanceArgs("show")
    action = words[0].lower()
    if action == "off" and len(words) == 1:
        return MaintenanceArgs("off")
    if action != "on":
        return Usage(f"{_shown(words[0])}: use on <duration> [reason] or off", MAINTENANCE_EXAMPLE)
    if len(words) < 2:
        return Usage("say for how long", MAINTENANCE_EXAMPLE)
    duration = _duration(words[1], max_s=max_s, example=MAINTENANCE_EXAMPLE)
    if isinstance(duration, Usage):
        return duration
    return MaintenanceArgs("on", duration, " ".join(words[2:]))
