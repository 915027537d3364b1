"""The evaluator's rules of the game: thresholds in force, maintenance relaxation, optional
parts, series that vanish, and values in the rule's unit."""
from __future__ import annotations

from collections.abc import Mapping

from alerts.evaluate import Evaluator
from alerts.rules import Rule, load_rules, parse_rules
from alerts.units import fmt_unit
from monitoring import metric_names as m
from tests.alerts.scenario import INTERVAL_S, Run, make_snapshot, series

RULES = load_rules()
T0 = 1_700_000_000.0


class Tuned:
    def __init__(self, values: Mapping[str, float]) -> None:
        self.values = values

    def threshold(self, rule: Rule) -> float:
        return self.values.get(rule.name, rule.threshold)


class Maintenance:
    def __init__(self, on: bool) -> None:
        self.on = on

    async def muted(self, rule: Rule, labels: Mapping[str, str], now: float) -> str | None:
        return "maintenance" if self.on else None

    def in_maintenance(self, now: float) -> bool:
        return self.on


def one(observations, rule: str):
    found = [o for o in observations if o.rule == rule]
    assert len(found) == 1, found
    return found[0]


async def test_the_tuned_threshold_is_the_one_in_force() -> None:
    snap = make_snapshot(T0, {series(m.PROCESS_MEMORY_SHARE): 0.7})
    plain = one(await Evaluator(RULES).evaluate(snap, T0), "memory_high")
    tuned = one(await Evaluator(RULES, Tuned({"memory_high": 0.65})).evaluate(snap, T0), "memory_high")
    assert (plain.breached, plain.threshold) == (False, 0.8)
    assert (tuned.breached, tuned.threshold) == (True, 0.65)
    assert tuned.context["threshold"] == "65%" and tuned.context["value"] == "70%"


async def test_maintenance_applies_the_rules_relaxed_threshold() -> None:
    snap = make_snapshot(T0, {series(m.PROCESS_MEMORY_SHARE): 0.85})
    normal = one(await Evaluator(RULES, mutes=Maintenance(False)).evaluate(snap, T0), "memory_high")
    relaxed = one(await Evaluator(RULES, mutes=Maintenance(True)).evaluate(snap, T0), "memory_high")
    assert normal.breached and not relaxed.breached and relaxed.threshold == 0.9
    # a rule without a relaxed threshold keeps its own during maintenance
    critical = one(await Evaluator(RULES, mutes=Maintenance(True)).evaluate(
        make_snapshot(T0, {series(m.PROCESS_MEMORY_SHARE): 0.95}), T0), "memory_critical")
    assert critical.breached and critical.threshold == 0.92


async def test_redis_rules_run_only_when_redis_is_configured() -> None:
    snap = make_snapshot(T0, {series(m.REDIS_UP): 0.0})
    assert one(await Evaluator(RULES).evaluate(snap, T0), "redis_down").breached  # inferred: it reports
    assert one(await Evaluator(RULES, configured={"redis"}).evaluate(snap, T0), "redis_down").breached
    assert [o for o in await Evaluator(RULES, configured=set()).evaluate(snap, T0) if o.rule == "redis_down"] == []


async def test_each_matching_series_is_its_own_observation() -> None:
    snap = make_snapshot(T0, {series(m.API_FAILING_SECONDS, endpoint="tokens_batch"): 40.0,
                              series(m.API_FAILING_SECONDS, endpoint="token_pairs"): 0.0})
    obs = {o.labels["endpoint"]: o for o in await Evaluator(RULES).evaluate(snap, T0) if o.rule == "market_api_down"}
    assert obs["tokens_batch"].breached and not obs["token_pairs"].breached
    assert obs["tokens_batch"].fingerprint != obs["token_pairs"].fingerprint
    assert obs["tokens_batch"].context["endpoint"] == "tokens_batch"
    assert obs["tokens_batch"].context["value"] == "40s"


async def test_a_rule_without_series_observes_nothing() -> None:
    obs = await Evaluator(RULES).evaluate(make_snapshot(T0, {series(m.DB_UP): 1.0}), T0)
    assert {o.rule for o in obs} == {"database_down"}


async def test_a_series_that_stops_reporting_gives_none_until_forgotten() -> None:
    evaluator = Evaluator(RULES, forget_after_s=600)
    key = series(m.DB_UP)
    assert one(await evaluator.evaluate(make_snapshot(T0, {key: 0.0}), T0), "database_down").breached
    # the db collector fails: the snapshot still holds its old sample, now stale
    later = T0 + 4 * INTERVAL_S
    gone = one(await evaluator.evaluate(make_snapshot(later, {}, stale={key: T0}), later), "database_down")
    assert gone.value is None and not gone.breached and gone.context["value"] == "—"
    assert gone.fingerprint == one(await evaluator.evaluate(make_snapshot(T0 + 50, {}), T0 + 50),
                                   "database_down").fingerprint
    assert [o for o in await evaluator.evaluate(make_snapshot(T0 + 700, {}), T0 + 700)
            if o.rule == "database_down"] == []


async def test_windowed_rules_read_the_history_not_only_the_latest_value() -> None:
    rules = parse_rules({"rule": [{
        "name": "errors_burst", "metric": m.API_ERRORS_TOTAL, "aggregation": "rate", "window": "1m",
        "op": ">", "threshold": 1.0, "unit": "per_min", "summary": "{endpoint}: {value} errors/s"}]})
    run = Run(Evaluator(rules))
    count = {"n": 0.0}

    def errors(t: float):
        count["n"] += 0 if t < 60 else 20  # 2 errors per second from t=60
        return {series(m.API_ERRORS_TOTAL, endpoint="x"): count["n"]}

    cycles = await run.for_minutes(3, errors)
    rates = [c.of("errors_burst")[0].value for c in cycles]
    assert rates[0] is None  # one point: no rate yet
    assert rates[3] == 0.0 and rates[-1] == 2.0
    assert cycles[-1].of("errors_burst")[0].breached


def test_values_are_written_in_the_rules_unit() -> None:
    assert fmt_unit(3.5e8, "bytes") == "334 MiB"
    assert fmt_unit(2.5 * 1024 ** 3, "bytes") == "2.5 GiB"
    assert fmt_unit(0.25, "s") == "250 ms" and fmt_unit(95, "s") == "1m 35s"
    assert fmt_unit(0.423, "ratio") == "42.3%" and fmt_unit(87, "percent") == "87%"
    assert fmt_unit(1234, "count") == "1,234" and fmt_unit(12.5, "per_min") == "12.5/min"
    assert fmt_unit(None, "s") == "—" and fmt_unit(float("nan"), "") == "—"

