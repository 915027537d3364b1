"""Arguments of the alert commands, checked before anything is asked of the alert layer.

Each parser returns what the command needs, or a :class:`Usage` (one line: what is wrong, and an
example) that the router answers with; nothing changes on a ``Usage``::

    parse_incident_id("12")                          # 12
    parse_incident_id("abc")                         # Usage("'abc' is not an incident number", "/ack 12")
    parse_silence("rule=api_slow endpoint=tokens 2h deploy", rule_names)
        # SilenceArgs(matchers='rule=api_slow endpoint=tokens', duration_s=7200.0, reason='deploy')
    parse_maintenance("on 30m db upgrade")           # MaintenanceArgs('on', 1800.0, 'db upgrade')
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from app.durations import parse_duration

ACK_EXAMPLE = "/ack 12"
SILENCE_EXAMPLE = "/silence rule=api_slow endpoint=tokens 2h deploy"
MAINTENANCE_EXAMPLE = "/maintenance on 30m database upgrade"
SILENCE_MIN_S, SILENCE_MAX_S = 60.0, 7 * 86400.0
MAINTENANCE_MIN_S, MAINTENANCE_MAX_S = 60.0, 2 * 86400.0
MAX_REASON = 200
MAX_INCIDENT_ID = 2**62

_MATCHER = re.compile(r"^([a-z_][a-z0-9_]{0,47})(!=|=)(.+)$")
_VALUE = re.compile(r"^[^\s=!\"'<>&]{1,64}$")


@dataclass(frozen=True)
class Usage:
    """A one-line refusal of bad arguments, with an example of good ones."""

    problem: str
    example: str


@dataclass(frozen=True)
class SilenceArgs:
    matchers: str       # normalised: 'rule=api_slow endpoint=tokens'
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


def parse_silence(args: str, rule_names: Collection[str]) -> SilenceArgs | Usage:
    """``<rule or matchers> <duration> [reason]``: matchers are ``name=value`` or ``name!=value``;
    a bare first word is a rule name (``api_slow`` means ``rule=api_slow``)."""
    words = args.split()
    matchers: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if i == 0 and "=" not in word and not word[:1].isdigit():
            if word not in rule_names:
                return Usage(f"unknown rule {_shown(word)}; give a rule name or matchers", SILENCE_EXAMPLE)
            matchers.append(f"rule={word}")
            i += 1
            continue
        if "=" not in word:
            break
        match = _MATCHER.match(word)
        if match is None or not _VALUE.match(match.group(3)):
            return Usage(f"bad matcher {_shown(word)}; write name=value", SILENCE_EXAMPLE)
        name, op, value = match.groups()
        if name == "rule" and op == "=" and value not in rule_names:
            return Usage(f"unknown rule {_shown(value)}", SILENCE_EXAMPLE)
        matchers.append(f"{name}{op}{value}")
        i += 1
    if not matchers:
        return Usage("say what to silence: a rule name or matchers", SILENCE_EXAMPLE)
    if i >= len(words):
        return Usage("say for how long", SILENCE_EXAMPLE)
    try:
        duration = parse_duration(words[i], min_s=SILENCE_MIN_S, max_s=SILENCE_MAX_S)
    except ValueError as exc:
        return Usage(str(exc), SILENCE_EXAMPLE)
    reason = " ".join(words[i + 1:])
    if len(reason) > MAX_REASON:
        return Usage(f"the reason is too long (at most {MAX_REASON} characters)", SILENCE_EXAMPLE)
    return SilenceArgs(" ".join(matchers), duration, reason)


def parse_maintenance(args: str | None) -> MaintenanceArgs | Usage:
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
    try:
        duration = parse_duration(words[1], min_s=MAINTENANCE_MIN_S, max_s=MAINTENANCE_MAX_S)
    except ValueError as exc:
        return Usage(str(exc), MAINTENANCE_EXAMPLE)
    reason = " ".join(words[2:])
    if len(reason) > MAX_REASON:
        return Usage(f"the reason is too long (at most {MAX_REASON} characters)", MAINTENANCE_EXAMPLE)
    return MaintenanceArgs("on", duration, reason)
