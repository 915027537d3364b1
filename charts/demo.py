"""A synthetic metric history with every series the presets draw (for tests, the benchmark and
the picture in docs/). Deterministic for a given seed.

    samples = synthetic_samples(now, span_s=86400, step_s=10)
    await store.write(samples); await store.rollup(now)
    await write_synthetic_alerts(db, now, span_s=86400)     # incidents, acks, maintenance windows
"""
from __future__ import annotations

import math
import random

from monitoring import metric_names as m
from monitoring.sample import Sample

GiB = 1024.0 ** 3
ENDPOINTS = ("tokens", "pairs")
REASONS = ("activated", "expired", "low_score")


def synthetic_samples(now: float, *, span_s: float, step_s: float, seed: int = 7,
                      stall: tuple[float, float] | None = None,
                      growth: tuple[float, float] | None = None) -> list[Sample]:
    """Samples every ``step_s`` over ``[now - span_s, now)``. ``stall`` marks a (start, end)
    window where the pipeline is stalled (default: a 10-minute stall in the middle); memory and
    backlog grow steadily over ``growth`` (start, end; default the whole span)."""
    rng = random.Random(seed)
    start = now - span_s
    if stall is None:
        mid = start + span_s / 2
        stall = (mid, mid + max(600.0, 3 * step_s))
    out: list[Sample] = []
    counters = {r: 0.0 for r in REASONS}
    steps = int(span_s // step_s)
    g0, g1 = growth or (start, now)
    for i in range(steps):
        ts = start + i * step_s
        f = min(1.0, max(0.0, (ts - g0) / max(1.0, g1 - g0)))
        wave = math.sin(2 * math.pi * (ts % 86400) / 86400)
        noise = rng.random
        stalled = stall[0] <= ts < stall[1]
        add = out.append
        # health
        add(Sample(m.PROCESS_RESIDENT_BYTES, (0.6 + 0.5 * f) * GiB + noise() * 30e6, ts=ts))
        add(Sample(m.PROCESS_MEMORY_LIMIT_BYTES, 2 * GiB, ts=ts))
        add(Sample(m.PROCESS_CPU_SHARE, 0.2 + 0.1 * wave + 0.05 * noise(), ts=ts))
        add(Sample(m.LOOP_LAG_P95_SECONDS, 0.004 + 0.003 * noise(), ts=ts))
        add(Sample(m.LOOP_LAG_MAX_SECONDS, 0.01 + 0.02 * noise(), ts=ts))
        # processing
        for status, base in (("monitoring", 40.0), ("active", 12.0)):
            add(Sample(m.CHECKS_PER_MINUTE, 0.0 if stalled else base * (1 + 0.2 * wave) + 3 * noise(),
                       {"status": status}, ts=ts))
        for band, base in (("hot", 5.0), ("cold", 15.0)):
            due = base * (1 + f) + 3 * noise() + (60.0 if stalled else 0.0)
            add(Sample(m.DUE_TOKENS, due, {"band": band}, ts=ts))
            add(Sample(m.OVERDUE_TOKENS, max(0.0, due - base * 1.5), {"band": band}, ts=ts))
            add(Sample(m.PROCESSING_LAG_SECONDS, (2.0 if band == "hot" else 8.0) * (1 + noise()),
                       {"band": band, "quantile": "0.95"}, ts=ts))
        add(Sample(m.PIPELINE_STALLED, 1.0 if stalled else 0.0, ts=ts))
        # activation
        add(Sample(m.ACTIVATION_SUCCESS_RATE, 0.3 + 0.1 * wave + 0.05 * noise(), ts=ts))
        add(Sample(m.ACTIVATION_CHECK_PASS_RATE, 0.1 + 0.05 * noise(), ts=ts))
        add(Sample(m.TIME_TO_ACTIVATION_SECONDS, 90 + 30 * noise(), {"quantile": "0.5"}, ts=ts))
        add(Sample(m.TIME_TO_ACTIVATION_SECONDS, 300 + 120 * noise(), {"quantile": "0.95"}, ts=ts))
        for reason, per_step in zip(REASONS, (0.2, 0.5, 0.3)):
            counters[reason] += per_step * step_s / 10 * (0.5 + noise())
            add(Sample(m.PIPELINE_TRANSITIONS_TOTAL, counters[reason], {"reason": reason}, ts=ts))
        # api
        for k, endpoint in enumerate(ENDPOINTS):
            for metric, base in ((m.API_LATENCY_P50_SECONDS, 0.08), (m.API_LATENCY_P95_SECONDS, 0.25),
                                 (m.API_LATENCY_P99_SECONDS, 0.6)):
                add(Sample(metric, base * (1 + k * 0.5) * (1 + 0.3 * noise()), {"endpoint": endpoint}, ts=ts))
            add(Sample(m.API_ERROR_RATE, 0.02 * noise() + (0.5 if stalled else 0.0), {"endpoint": endpoint}, ts=ts))
            add(Sample(m.API_WINDOW_RATE_LIMITED, float(int(noise() * 3)), {"endpoint": endpoint}, ts=ts))
            add(Sample(m.API_WINDOW_TIMEOUTS, float(int(noise() * 2)), {"endpoint": endpoint}, ts=ts))
            # the circuit breaker: open while the pipeline stalls (the market failing), probing at its end
            add(Sample(m.CIRCUIT_STATE, 2.0 if stalled else 0.0, {"endpoint": endpoint}, ts=ts))
        # tokens
        for status, base in (("monitoring", 300.0), ("active", 40.0), ("archived", 2000.0)):
            add(Sample(m.TOKENS, base * (1 + f) + int(noise() * 5), {"status": status}, ts=ts))
    return out


DEMO_RULES = (("market_api_down", "critical"), ("api_slow", "warning"), ("api_errors", "warning"),
              ("api_rate_limited", "warning"), ("backlog_growing", "warning"), ("processing_stalled", "critical"),
              ("memory_high", "warning"), ("loop_lag_high", "info"), ("activation_rate_low", "info"),
              ("stuck_tokens", "warning"))


async def write_synthetic_alerts(db, now: float, *, span_s: float, incidents: int = 40,  # noqa: ANN001
                                 seed: int = 7) -> None:
    """An alert engine's history over ``[now - span_s, now)`` as the engine records it:
    ``incidents`` incidents of 1-3 rules each (5-60 minutes, the last one still open), about
    half acknowledged, and two maintenance windows (for the benchmark and demo pictures)."""
    from alerts.models import AlertEvent, AlertIncident, AlertMaintenance, AlertState

    rng = random.Random(seed)
    start = now - span_s
    async with db.session() as session:
        for i in range(incidents):
            opened = start + (i + rng.random() * 0.5) * span_s / incidents
            last = i == incidents - 1
            length = rng.uniform(300, 3600)
            rules = rng.sample(DEMO_RULES, rng.randint(1, 3))
            severity = max((sev for _r, sev in rules), key=("info", "warning", "critical").index)
            resolved = None if last else min(now - 1, opened + length)
            inc = AlertIncident(group_key=f"g{i % 4}", title=f"demo incident {i}", severity=severity,
                                status="open" if last else "resolved", opened_at=opened, resolved_at=resolved)
            session.add(inc)
            await session.flush()
            for k, (rule, sev) in enumerate(rules):
                fired, fp = opened + k * rng.uniform(0, 120), f"demo-{rule}-{i}"
                session.add(AlertState(fingerprint=fp, rule=rule, severity=sev, incident_id=inc.id))
                session.add(AlertEvent(kind="fired", at=fired, rule=rule, fingerprint=fp, incident_id=inc.id))
                if resolved is not None:
                    session.add(AlertEvent(kind="resolved", at=max(fired + 1, resolved), rule=rule, fingerprint=fp,
                                           incident_id=inc.id))
            if rng.random() < 0.5:
                session.add(AlertEvent(kind="ack", at=opened + rng.uniform(30, 300), incident_id=inc.id,
                                       actor="demo"))
        for frac in (0.3, 0.7):
            session.add(AlertMaintenance(started_at=start + frac * span_s, ends_at=start + frac * span_s + 2400,
                                         reason="demo maintenance"))
        await session.commit()
