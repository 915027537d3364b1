"""Every shipped rule: a sequence of snapshots that fires it, and a near miss that does not.

Each case starts from a healthy service (``scenario.healthy``) and changes only what the case
is about; ``fired`` applies the rule's ``for`` and ``keep_firing_for`` as the engine does.
A healthy half hour fires nothing at all.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from alerts.evaluate import Evaluator, summary_fields
from alerts.rules import load_rules
from monitoring import metric_names as m
from tests.alerts.scenario import MIB, Key, Run, fired, make_snapshot, pipeline_snapshot, series

RULES = load_rules()
Over = Callable[[float], Mapping[Key, float]]


def after(t0: float, values: Mapping[Key, float]) -> Over:
    return lambda t: values if t >= t0 else {}


def between(t0: float, t1: float, values: Mapping[Key, float]) -> Over:
    return lambda t: values if t0 <= t < t1 else {}


def growing(key: Key, t0: float, per_s: float = 1.0, base: float = 0.0) -> Over:
    return lambda t: {key: base + per_s * (t - t0)} if t >= t0 else {}


def counter(key: Key, t0: float, every_s: float) -> Over:
    """A counter that rises by one every ``every_s`` from ``t0``."""
    return lambda t: {key: float(int((t - t0) // every_s) + 1)} if t >= t0 else {}


BATCH = {"endpoint": "tokens_batch"}
# rule -> (minutes, breaching overrides, near miss overrides)
CASES: dict[str, tuple[float, Over, Over]] = {
    "market_api_down": (5, growing(series(m.API_FAILING_SECONDS, **BATCH), 60),
                        # failing 15 s, then an answer (a blip, not an outage)
                        lambda t: {series(m.API_FAILING_SECONDS, **BATCH): min(t - 60, 15.0)} if 60 <= t < 80 else {}),
    "api_errors": (10, after(60, {series(m.API_ERROR_RATE, **BATCH): 0.6}),
                   between(60, 150, {series(m.API_ERROR_RATE, **BATCH): 0.6})),
    "api_rate_limited": (15, counter(series(m.API_RATE_LIMITED_TOTAL, **BATCH), 60, 5.0),
                         counter(series(m.API_RATE_LIMITED_TOTAL, **BATCH), 60, 30.0)),
    "api_slow": (10, after(60, {series(m.API_LATENCY_P95_SECONDS, **BATCH): 3.0}),
                 after(60, {series(m.API_LATENCY_P95_SECONDS, **BATCH): 1.8})),
    # open (2) with half-open probes (1) between; near miss: open 20 s, then closed (a blip under its `for`)
    "circuit_open": (5, lambda t: {series(m.CIRCUIT_STATE, **BATCH): 1.0 if int(t) % 30 == 0 else 2.0} if t >= 60 else {},
                     between(60, 80, {series(m.CIRCUIT_STATE, **BATCH): 2.0})),
    "discovery_silent": (30, growing(series(m.DISCOVERY_SILENCE_SECONDS, source="pumpportal"), 0),
                         lambda t: {series(m.DISCOVERY_SILENCE_SECONDS, source="pumpportal"): t % 1100}),
    "pipeline_stalled": (3, after(60, {series(m.PIPELINE_STALLED): 1.0}), lambda t: {}),
    "backlog_high": (10, after(60, {series(m.DUE_TOKENS, band="hot"): 900.0}),
                     between(60, 240, {series(m.DUE_TOKENS, band="hot"): 900.0})),
    "tokens_stuck": (10, after(60, {series(m.STUCK_TOKENS): 60.0}), after(60, {series(m.STUCK_TOKENS): 20.0})),
    "activation_rate_low": (40, after(60, {series(m.ACTIVATION_SUCCESS_RATE): 0.0}),
                            lambda t: {series(m.ACTIVATION_SUCCESS_RATE): 0.0 if (t // 600) % 2 else 0.3}),
    "memory_high": (5, after(60, {series(m.PROCESS_MEMORY_SHARE): 0.85}),
                    between(60, 100, {series(m.PROCESS_MEMORY_SHARE): 0.85})),
    "memory_critical": (5, after(60, {series(m.PROCESS_MEMORY_SHARE): 0.95}),
                        after(60, {series(m.PROCESS_MEMORY_SHARE): 0.9})),
    "memory_leak_suspected": (5, after(60, {series(m.MEMORY_LEAK_BYTES_PER_MINUTE): 2 * MIB,
                                            series(m.MEMORY_LEAK_CULPRIT, component="tokens",
                                                   source="tokens/pools.py:120"): 9.5 * MIB}),
                              after(60, {series(m.MEMORY_LEAK_BYTES_PER_MINUTE): 0.0})),
    "cpu_high": (8, after(60, {series(m.PROCESS_CPU_PERCENT): 95.0}),
                 between(60, 150, {series(m.PROCESS_CPU_PERCENT): 95.0})),
    "event_loop_lag": (5, after(60, {series(m.LOOP_LAG_P95_SECONDS): 0.9}),
                       lambda t: {series(m.LOOP_LAG_P95_SECONDS): 0.9} if 60 <= t and (t // 30) % 2 else {}),
    "database_down": (3, after(60, {series(m.DB_UP): 0.0}), between(60, 70, {series(m.DB_UP): 0.0})),
    "database_slow": (8, after(60, {series(m.DB_PING_SECONDS): 0.9}), after(60, {series(m.DB_PING_SECONDS): 0.3})),
    "redis_down": (3, after(60, {series(m.REDIS_UP): 0.0}), between(60, 80, {series(m.REDIS_UP): 0.0})),
    "job_failing": (10, counter(series(m.JOB_ERRORS_TOTAL, job="pipeline.process"), 60, 60.0),
                    counter(series(m.JOB_ERRORS_TOTAL, job="pipeline.process"), 60, 600.0)),
    "job_overrunning": (5, after(120, {series(m.JOB_TIMEOUTS_TOTAL, job="pipeline.process"): 1.0}), lambda t: {}),
    "watchdog_gave_up": (5, after(60, {series(m.WATCHDOG_GAVE_UP, kind="job", id="pipeline.process"): 1.0}),
                         after(60, {series(m.WATCHDOG_GAVE_UP, kind="job", id="pipeline.process"): 0.0})),
    "telegram_unreachable": (5, growing(series(m.TELEGRAM_OUTAGE_SECONDS), 60),
                             lambda t: {series(m.TELEGRAM_OUTAGE_SECONDS): min(max(0.0, t - 60), 90.0)} if t < 150 else {}),
    "telegram_unauthorized": (2, after(60, {series(m.TELEGRAM_UNAUTHORIZED): 1.0}), lambda t: {}),
    "telegram_outbox_stuck": (15, growing(series(m.OUTBOX_OLDEST_PENDING_SECONDS), 60),
                              lambda t: {series(m.OUTBOX_OLDEST_PENDING_SECONDS): (t % 500)}),
}
FORECASTS = {"memory_exhaustion_predicted", "backlog_exhaustion_predicted"}  # tests/alerts/test_forecast.py


def test_every_shipped_rule_has_a_case() -> None:
    assert set(CASES) | FORECASTS == set(RULES.names)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_breaching_sequence_fires_the_rule(name: str) -> None:
    rule = RULES[name]
    minutes, breach, _ = CASES[name]
    stalled = name == "pipeline_stalled"
    cycles = await Run(Evaluator(RULES)).for_minutes(
        minutes, breach,
        (lambda now: pipeline_snapshot(now, stalled=now - 1_700_000_000.0 >= 60, stage="fetch",
                                       reason="every fetch failing", silent_for_s=95.0)) if stalled else None)
    times = fired(cycles, rule)
    assert times, f"{name} never fired"
    first = times[0][0] - cycles[0].at
    assert first >= rule.for_s  # never before its `for`
    obs = next(o for c in cycles for o in c.of(name) if o.breached)
    rule.summary.format_map(obs.context)
    assert obs.value is not None and "—" not in (obs.context["value"], obs.context["threshold"])
    # no other rule fires in a case about one thing (besides what depends on it)
    for other in RULES:
        if other.name != name and name not in RULES.causes(other.name) and other.name not in RULES.causes(name):
            if other.name in ("memory_high",) and name == "memory_critical":
                continue  # critical memory is also high memory
            assert not fired(cycles, other), f"{name} also fired {other.name}"


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_near_miss_does_not_fire_the_rule(name: str) -> None:
    minutes, _, near = CASES[name]
    cycles = await Run(Evaluator(RULES)).for_minutes(minutes, near)
    assert any(c.of(name) for c in cycles), f"{name} observed nothing"
    assert fired(cycles, RULES[name]) == []


async def test_a_healthy_half_hour_fires_nothing() -> None:
    cycles = await Run(Evaluator(RULES), seed=11).for_minutes(30)
    observed = {o.rule for c in cycles for o in c.observations}
    assert observed >= set(CASES)  # every rule saw its series
    for rule in RULES:
        assert fired(cycles, rule) == [], rule.name
    assert not any(o.breached for c in cycles for o in c.observations)


async def test_processing_stopped_names_the_stalled_stage_and_reason() -> None:
    cycles = await Run(Evaluator(RULES)).for_minutes(
        1, after(0, {series(m.PIPELINE_STALLED): 1.0}),
        lambda now: pipeline_snapshot(now, stalled=True, stage="fetch", reason="every fetch failing (47 failed)",
                                      silent_for_s=95.0))
    obs = cycles[-1].of("pipeline_stalled")[0]
    assert obs.breached
    assert RULES["pipeline_stalled"].summary.format_map(obs.context) == (
        "Token processing stopped: no successful check for 1m 35s; stopped at fetch: every fetch failing (47 failed)")


async def test_stuck_tokens_name_the_count_and_top_reasons() -> None:
    cycles = await Run(Evaluator(RULES)).for_minutes(
        1, after(0, {series(m.STUCK_TOKENS): 500.0}),
        lambda now: pipeline_snapshot(now, stuck=500, stuck_by_reason={
            "failing_checks": 412, "never_checked": 80, "quarantined": 6, "no_successful_check": 2}))
    obs = cycles[-1].of("tokens_stuck")[0]
    assert RULES["tokens_stuck"].summary.format_map(obs.context) == (
        "500 tokens stuck in monitoring (limit 25); top reasons: failing checks 412, never checked 80, quarantined 6")


async def test_without_a_pipeline_snapshot_the_context_comes_from_the_samples() -> None:
    cycles = await Run(Evaluator(RULES)).for_minutes(1, after(0, {
        series(m.PIPELINE_STALLED): 1.0, series(m.PIPELINE_STALLED_STAGE, stage="write"): 1.0,
        series(m.PIPELINE_STALLED_STAGE, stage="fetch"): 0.0, series(m.LAST_CHECK_AGE_SECONDS): 200.0,
        series(m.STUCK_TOKENS_BY_REASON, reason="never_checked"): 9.0}))
    ctx = cycles[-1].of("pipeline_stalled")[0].context
    assert (ctx["stage"], ctx["silent_for"]) == ("write", "3m 20s")
    assert cycles[-1].of("tokens_stuck")[0].context["top_reasons"] == "never checked 9"


async def test_memory_alerts_say_how_much_of_what_limit() -> None:
    cycles = await Run(Evaluator(RULES)).for_minutes(2, after(0, {
        series(m.PROCESS_MEMORY_SHARE): 0.95, series(m.PROCESS_RESIDENT_BYTES): 973 * MIB}))
    obs = cycles[-1].of("memory_critical")[0]
    assert RULES["memory_critical"].summary.format_map(obs.context).startswith(
        "Memory critical: 95% of the limit in use (973 MiB of 1 GiB; critical at 92%)")
    assert [b.action for b in RULES["memory_high"].remediation] == ["memory_cleanup"]
    assert RULES["memory_high"].cleanup_first and RULES["memory_critical"].cleanup_first


@pytest.mark.parametrize("name", sorted(RULES.names))
async def test_every_placeholder_of_every_summary_is_always_present(name: str) -> None:
    rule = RULES[name]
    evaluator = Evaluator(RULES)
    run = Run(evaluator)
    cycles = await run.for_minutes(1)
    over = CASES[name][1] if name in CASES else (lambda t: {})
    cycles += await run.for_minutes(3, over)
    # then every collector stops reporting: value None observations carry the placeholders too
    gone = await evaluator.evaluate(make_snapshot(run.now + 40, {}), run.now + 40)
    observations = [o for c in cycles for o in c.of(name)] + [o for o in gone if o.rule == name]
    assert observations
    assert any(o.value is None for o in observations if o.rule == name)
    for obs in observations:
        assert summary_fields(rule) <= set(obs.context), (name, summary_fields(rule) - set(obs.context))
        rule.summary.format_map(obs.context)
        assert all(isinstance(v, str) for v in obs.context.values())


async def test_a_leak_names_its_culprit() -> None:
    cycles = await Run(Evaluator(RULES)).for_minutes(2, after(0, {
        series(m.MEMORY_LEAK_BYTES_PER_MINUTE): 2 * MIB,
        series(m.MEMORY_LEAK_CULPRIT, component="tokens", source="tokens/pools.py:120"): 9.5 * MIB}))
    obs = cycles[-1].of("memory_leak_suspected")[0]
    assert obs.breached
    assert RULES["memory_leak_suspected"].summary.format_map(obs.context) == (
        "Memory leak suspected: memory left after garbage collection grows 2 MiB a minute; "
        "culprit tokens (tokens/pools.py:120, +9.5 MiB)")


def test_inhibition_declarations_resolve() -> None:
    down = "market_api_down"
    for name in ("pipeline_stalled", "backlog_high", "tokens_stuck", "api_errors", "api_slow", "api_rate_limited",
                 "circuit_open", "activation_rate_low", "backlog_exhaustion_predicted"):
        assert down in RULES.causes(name), name
    assert RULES.causes(down) == []
    assert RULES.causes("tokens_stuck") == ["market_api_down", "pipeline_stalled"]
    assert RULES.causes("database_slow") == ["database_down"]
    for rule in RULES:
        assert rule.name not in RULES.causes(rule.name)


def test_the_shipped_file_declares_what_the_issue_asks() -> None:
    assert RULES["redis_down"].when_configured == "redis"
    assert {r.name for r in RULES if r.notify == "out_of_band"} >= {"telegram_unreachable", "telegram_unauthorized"}
    assert {r.name for r in RULES if r.forecast is not None} == FORECASTS
    assert RULES["job_failing"].remediation and RULES["job_overrunning"].remediation
    for rule in RULES:
        if rule.tune is not None and rule.tune.auto:
            assert rule.severity != "critical", rule.name
    assert RULES["pipeline_stalled"].severity == "critical"
    assert RULES["memory_high"].severity == "warning" and RULES["memory_critical"].severity == "critical"
