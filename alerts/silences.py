"""Silence matchers, as operators type them after ``/silence``: parsed, checked and matched.

A silence names one or more matchers separated by spaces; a series is silenced when every
matcher holds. Besides the series' own labels, ``rule``, ``severity`` and ``group`` can be
matched. Regular expressions match the whole value (anchored, as in Alertmanager)::

    matchers = parse_matchers("api_slow endpoint=tokens")        # a bare name means rule=api_slow
    parse_matchers("rule=~api_.* severity!=critical")
    parse_matchers("endpoint=~(")      # MatcherError: bad regular expression in 'endpoint=~(' ...
    matches_all(matchers, series_labels(rule, {"endpoint": "tokens"}))       # True
    matchers_text(matchers)            # 'rule=api_slow endpoint=tokens'

Every :class:`MatcherError` is one line with an example. A silence must select something:
at least one ``=`` or ``=~`` matcher that does not match the empty value (``!=`` alone would
silence everything).
"""
from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from alerts.rules import Rule

OPS = ("=", "!=", "=~", "!~")
MAX_MATCHERS = 8
MAX_VALUE_LEN = 128
MAX_REGEX_LEN = 100
MAX_MATCHED_LEN = 256      # a label value longer than this is matched on its first 256 characters
EXAMPLE = "/silence rule=api_slow endpoint=tokens 1h deploy"
_TOKEN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,47})(=~|!~|!=|=)(.*)$", re.S)
_BARE_RULE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class MatcherError(ValueError):
    """A matcher that cannot be used; ``str(err)`` is one line with an example."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; write it like {EXAMPLE}")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = str(labels.get(self.name, ""))[:MAX_MATCHED_LEN]
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    @property
    def text(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}


def make_matcher(name: str, op: str, value: str) -> Matcher:
    """One checked matcher (raises :class:`MatcherError`)."""
    shown = f"{name}{op}{value}"[:60]
    if op not in OPS:
        raise MatcherError(f"unknown operator {op!r} in {shown!r} (use =, !=, =~ or !~)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,47}", name):
        raise MatcherError(f"bad label name in {shown!r}")
    if len(value) > MAX_VALUE_LEN:
        raise MatcherError(f"value too long in {shown!r}... (at most {MAX_VALUE_LEN} characters)")
    regex: re.Pattern[str] | None = None
    if op in ("=~", "!~"):
        if len(value) > MAX_REGEX_LEN:
            raise MatcherError(f"regular expression too long in {shown!r}... (at most {MAX_REGEX_LEN} characters)")
        try:
            regex = re.compile(value)
        except (re.error, RecursionError, OverflowError) as err:
            raise MatcherError(f"bad regular expression in {shown!r}: {str(err)[:60]}") from None
    return Matcher(name, op, value, regex)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_matchers(text: str, known_rules: Collection[str] | None = None) -> tuple[Matcher, ...]:
    """Matchers from ``text`` (space separated); a bare lower_snake name means ``rule=<name>``.
    With ``known_rules``, ``rule=<name>`` must name one of them."""
    tokens = (text or "").split()
    if not tokens:
        raise MatcherError("name a rule or matchers")
    if len(tokens) > MAX_MATCHERS:
        raise MatcherError(f"too many matchers ({len(tokens)}; at most {MAX_MATCHERS})")
    matchers: list[Matcher] = []
    for token in tokens:
        match = _TOKEN.match(token)
        if match is None:
            if _BARE_RULE.match(token):
                matchers.append(make_matcher("rule", "=", token))
                continue
            raise MatcherError(f"{token[:40]!r} is not a matcher (label=value, !=, =~ or !~)")
        matchers.append(make_matcher(match.group(1), match.group(2), _unquote(match.group(3))))
    if known_rules is not None:
        for m in matchers:
            if m.name == "rule" and m.op == "=" and m.value not in known_rules:
                raise MatcherError(f"unknown rule {m.value[:48]!r} (see /tune or /alerts for the names)")
    if not any(m.op in ("=", "=~") and not m.matches({}) for m in matchers):
        raise MatcherError("a silence must select something: add rule=<name> or label=value")
    return tuple(matchers)


def matchers_text(matchers: Sequence[Matcher]) -> str:
    return " ".join(m.text for m in matchers)


def matchers_to_json(matchers: Sequence[Matcher]) -> str:
    return json.dumps([m.as_dict() for m in matchers], ensure_ascii=False, separators=(",", ":"))


def matchers_from_json(text: str) -> tuple[Matcher, ...]:
    """Stored matchers back (checked again; raises :class:`MatcherError` for junk)."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise MatcherError("stored matchers are not JSON") from None
    if not isinstance(raw, list):
        raise MatcherError("stored matchers are not a list")
    return tuple(make_matcher(str(m.get("name", "")), str(m.get("op", "")), str(m.get("value", "")))
                 for m in raw if isinstance(m, dict))


def series_labels(rule: Rule, labels: Mapping[str, str]) -> dict[str, str]:
    """What a silence is matched against: the series' labels plus rule, severity and group."""
    return {**{str(k): str(v) for k, v in labels.items()},
            "rule": rule.name, "severity": rule.severity, "group": rule.group}


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    return bool(matchers) and all(m.matches(labels) for m in matchers)
