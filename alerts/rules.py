"""Alert rules: declared in a TOML file, validated with pydantic, loaded once at start.

The defaults ship as ``alerts/default_rules.toml``; ``ALERT_RULES_FILE`` names another file.
A rule reads like a Prometheus alerting rule::

    [[rule]]
    name = "api_slow"
    metric = "tokenwatch_api_latency_p95_seconds"   # a name from monitoring/metric_names.py
    labels = {}                  # exact label matches; each matching series is its own alert
    aggregation = "avg"          # last | avg | max | min | rate | increase | percentile
    window = "2m"                # what the aggregation looks back over ("last" needs none)
    op = ">"
    threshold = 2.0
    for = "1m"                   # condition true this long before it fires (pending until then)
    keep_firing_for = "20s"      # condition false this long before it resolves (hysteresis)
    lookback = "5m"              # the metric itself summarizes this much past (a 5-minute error
                                 # rate): a consequence waits it out after its root cause resolves
    severity = "warning"         # info | warning | critical
    group = "market"             # incidents group the alerts of one group
    depends_on = ["market_api_down"]   # folded under that alert while it fires (inhibition)
    summary = "API {endpoint} p95 latency {value} over {threshold}"
    runbook = "DexScreener answers slowly; check /status API and the provider's status page"

    rules = load_rules(Path("alerts/default_rules.toml"))   # RuleSet; raises RuleFileError
    rules["api_slow"].threshold

A bad file stops the start with one line naming the file, the rule and what is wrong
(:class:`RuleFileError`, a ``StartupError``: ``tokenwatch run`` prints it as its one line)::

    rules = load_configured_rules(settings)     # ALERT_RULES_FILE, or the shipped defaults

A forecast rule (``forecast = {history = "2h", horizon = "6h", limit_metric = "..."}``) observes
the predicted seconds until its metric reaches the limit; write ``op = "<="`` and a
``threshold`` in seconds no longer than the horizon (see ``alerts/evaluate.py``).
"""
from __future__ import annotations

import math
import re
import string
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.durations import parse_duration
from app.startup_errors import StartupError
from monitoring.metric_names import METRICS, histogram_of

DEFAULT_RULES_FILE = Path(__file__).resolve().parent / "default_rules.toml"

Severity = Literal["info", "warning", "critical"]
Aggregation = Literal["last", "avg", "max", "min", "rate", "increase", "percentile"]
Op = Literal[">", ">=", "<", "<=", "==", "!="]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class RuleFileError(StartupError, ValueError):
    """A rules file that cannot be used: ``str(err)`` is one line with file, rule and problem
    (prefixed with the setting that named the file, ``ALERT_RULES_FILE``, when one did)."""

    def __init__(self, path: Path | str, rule: str | None, problem: str, *, setting: str | None = None) -> None:
        self.path, self.rule, self.problem, self.setting = str(path), rule, problem, setting
        where = f"rule {rule!r}: " if rule else ""
        head = f"{setting} {self.path}" if setting else self.path
        super().__init__(f"{head}: {where}{problem}")


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value, min_s=0.0)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Remediation(_Strict):
    """A button on the alert message that runs a named action (admins only).
    ``action`` names an entry in the remediation registry (``alerts.remediation``)."""

    label: str = Field(min_length=1, max_length=32)
    action: str = Field(pattern=r"^[a-z][a-z0-9_.:-]{0,40}$")


class Relaxation(_Strict):
    """How a rule relaxes during maintenance: a looser threshold and/or a longer ``for``."""

    threshold: float | None = None
    for_s: float | None = Field(default=None, alias="for", ge=0)

    _d = field_validator("for_s", mode="before")(_duration)


class TuneBounds(_Strict):
    """The range /tune and automatic tuning may move the threshold within."""

    min: float
    max: float
    auto: bool = False  # automatic tuning allowed (never for critical rules)

    @model_validator(mode="after")
    def _ordered(self) -> "TuneBounds":
        if not self.min <= self.max:
            raise ValueError("tune.min must not exceed tune.max")
        return self


class Forecast(_Strict):
    """Predicted exhaustion: fire when the Theil-Sen trend of the metric over ``history``
    reaches ``limit`` (or the latest value of ``limit_metric``) within ``horizon``."""

    history_s: float = Field(alias="history", gt=0)
    horizon_s: float = Field(alias="horizon", gt=0)
    limit: float | None = None
    limit_metric: str | None = None

    _d = field_validator("history_s", "horizon_s", mode="before")(_duration)

    @model_validator(mode="after")
    def _one_limit(self) -> "Forecast":
        if (self.limit is None) == (self.limit_metric is None):
            raise ValueError("forecast needs exactly one of limit or limit_metric")
        return self


class Rule(_Strict):
    name: str
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    aggregation: Aggregation = "last"
    window_s: float = Field(default=0.0, alias="window", ge=0)
    quantile: float | None = Field(default=None, gt=0, lt=1)
    op: Op = ">"
    threshold: float
    for_s: float = Field(default=0.0, alias="for", ge=0)
    keep_firing_for_s: float = Field(default=0.0, alias="keep_firing_for", ge=0)
    lookback_s: float = Field(default=0.0, alias="lookback", ge=0)
    severity: Severity = "warning"
    group: str = Field(default="general", pattern=r"^[a-z][a-z0-9_]{0,31}$")
    depends_on: tuple[str, ...] = ()
    summary: str = Field(min_length=1, max_length=300)
    runbook: str = Field(default="", max_length=500)
    unit: Literal["", "s", "bytes", "ratio", "percent", "count", "per_min"] = ""
    remediation: tuple[Remediation, ...] = ()
    maintenance: Relaxation | None = None
    tune: TuneBounds | None = None
    forecast: Forecast | None = None
    cleanup_first: bool = False   # memory rules: reclaim first, measure again, fire only if still over
    notify: Literal["chat", "out_of_band"] = "chat"  # out_of_band: console, log, fallback webhook
    when_configured: Literal["", "redis"] = ""       # evaluated only when that part is configured

    _d = field_validator("window_s", "for_s", "keep_firing_for_s", "lookback_s", mode="before")(_duration)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("name must be lower_snake_case, 1-48 characters, starting with a letter")
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value not in METRICS and histogram_of(value) is None:
            raise ValueError(f"unknown metric {value!r} (see monitoring/metric_names.py)")
        return value

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("threshold must be a finite number")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        if self.aggregation == "percentile" and self.quantile is None:
            raise ValueError("aggregation 'percentile' needs quantile (0 < q < 1)")
        if self.aggregation not in ("last",) and self.window_s <= 0:
            raise ValueError(f"aggregation {self.aggregation!r} needs a window (e.g. window = \"5m\")")
        if self.tune is not None and self.tune.auto and self.severity == "critical":
            raise ValueError("automatic tuning is not allowed for critical rules")
        if self.tune is not None and not self.tune.min <= self.threshold <= self.tune.max:
            raise ValueError("threshold lies outside its tune bounds")
        if self.forecast is not None:
            if self.op not in ("<", "<="):
                raise ValueError("a forecast rule compares the predicted seconds until the limit: use op = \"<=\"")
            if self.threshold > self.forecast.horizon_s:
                raise ValueError("a forecast rule's threshold (seconds) must not exceed forecast.horizon")
            limit_metric = self.forecast.limit_metric
            if limit_metric is not None and limit_metric not in METRICS:
                raise ValueError(f"forecast.limit_metric: unknown metric {limit_metric!r} (see monitoring/metric_names.py)")
        fields = {f for _, f, _, _ in string.Formatter().parse(self.summary) if f}
        bad = [f for f in fields if not re.fullmatch(r"[a-z_][a-z0-9_]*", f)]
        if bad:
            raise ValueError(f"summary placeholder {{{bad[0]}}} is not a plain name")
        return self

    def breached(self, value: float, threshold: float | None = None) -> bool:
        """Whether ``value`` meets this rule's condition (against ``threshold`` if given)."""
        t = self.threshold if threshold is None else threshold
        return {
            ">": value > t, ">=": value >= t, "<": value < t, "<=": value <= t,
            "==": value == t, "!=": value != t,
        }[self.op]


class RuleSet:
    """The loaded rules, by name, in file order."""

    def __init__(self, rules: list[Rule], path: Path | str = "<memory>") -> None:
        self.path = str(path)
        self._rules = {rule.name: rule for rule in rules}

    def __getitem__(self, name: str) -> Rule:
        return self._rules[name]

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def get(self, name: str) -> Rule | None:
        return self._rules.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._rules)

    def causes(self, name: str) -> list[str]:
        """Every rule ``name`` depends on, directly or through others (nearest first)::

            rules.causes("tokens_stuck")   # ["market_api_down", "pipeline_stalled"]
        """
        out: list[str] = []
        queue = list(self._rules[name].depends_on)
        while queue:
            dep = queue.pop(0)
            if dep not in out and dep != name:
                out.append(dep)
                queue.extend(self._rules[dep].depends_on)
        return out


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def parse_rules(data: dict, path: Path | str = "<memory>") -> RuleSet:
    """Validate already-parsed TOML (``{"rule": [...]}``) into a :class:`RuleSet`."""
    extra = sorted(set(data) - {"rule"})
    if extra:
        raise RuleFileError(path, None, f"unknown top-level key {extra[0]!r} (rules go in [[rule]] tables)")
    raw = data.get("rule")
    if not isinstance(raw, list) or not raw:
        raise RuleFileError(path, None, "no rules: add at least one [[rule]] table")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        name = item.get("name") if isinstance(item, dict) else None
        label = name if isinstance(name, str) else f"#{index}"
        try:
            rule = Rule.model_validate(item)
        except ValidationError as err:
            raise RuleFileError(path, label, _first_error(err)) from None
        if rule.name in seen:
            raise RuleFileError(path, rule.name, "defined twice")
        seen.add(rule.name)
        rules.append(rule)
    for rule in rules:
        for dep in rule.depends_on:
            if dep not in seen:
                raise RuleFileError(path, rule.name, f"depends_on names an unknown rule {dep!r}")
            if dep == rule.name:
                raise RuleFileError(path, rule.name, "a rule cannot depend on itself")
    _check_cycles(rules, path)
    return RuleSet(rules, path)


def _check_cycles(rules: list[Rule], path: Path | str) -> None:
    deps = {rule.name: rule.depends_on for rule in rules}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            loop = trail[trail.index(name):] + [name]
            raise RuleFileError(path, loop[0], f"depends_on makes a loop: {' -> '.join(loop)}")
        state[name] = 1
        for dep in deps[name]:
            visit(dep, trail + [name])
        state[name] = 2

    for rule in rules:
        visit(rule.name, [])


def load_configured_rules(settings: object) -> RuleSet:
    """The rules the service runs with: ``settings.alert_rules_file`` (``ALERT_RULES_FILE``), or the
    shipped defaults when it is empty. Raises :class:`RuleFileError` (one line naming
    ``ALERT_RULES_FILE``, the file, the rule and the problem) for a bad file."""
    configured = str(getattr(settings, "alert_rules_file", "") or "").strip()
    if not configured:
        return load_rules()
    try:
        return load_rules(Path(configured).expanduser())
    except RuleFileError as err:
        raise RuleFileError(err.path, err.rule, err.problem, setting="ALERT_RULES_FILE") from None


def load_rules(path: Path | str | None = None) -> RuleSet:
    """Read and validate a rules file (the shipped defaults when ``path`` is None)."""
    file = Path(path) if path is not None else DEFAULT_RULES_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise RuleFileError(file, None, f"cannot read: {err.strerror or err}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RuleFileError(file, None, f"not valid TOML: {err}") from None
    return parse_rules(data, file)
