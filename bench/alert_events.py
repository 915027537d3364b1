"""10,000 alert events in 60 s across 50 rules through the real engine, outbox and database.

    .venv/bin/python bench/alert_events.py               # SQLite file and PostgreSQL (if reachable)
    .venv/bin/python bench/alert_events.py --events 2000  # a quicker run

50 rules (10 groups, some depending on others) x 20 label sets = 1,000 series. Each of 60
evaluation cycles (one per second of manual-clock time) observes every series; each series
flips its condition with the probability that makes ``--events`` state changes (fired or
resolved) in total. The engine's tick runs after every cycle. Then the figures:

- transitions expected (from a plain model of the same flips) vs ``fired``/``resolved``
  events recorded: lost = expected - recorded (per series and kind), duplicated = recorded
  twice for the same series, kind and time; both must be 0;
- incidents opened and closed; opening messages and resolution pings queued (every announced
  incident must have exactly one of each: missing ones count as lost);
- messages queued in the outbox (new messages and edits) and the engine's CPU time
  (``time.process_time`` around ``observe`` and ``tick``; it includes the database driver's
  client side, not the PostgreSQL server).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import select  # noqa: E402

from alerts.engine import AlertEngine  # noqa: E402
from alerts.models import AlertEvent, AlertIncident  # noqa: E402
from alerts.observation import Observation  # noqa: E402
from alerts.rules import parse_rules  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.scratch_pg import scratch_postgres  # noqa: E402
from delivery.models import OutboxMessage  # noqa: E402
from delivery.store import Outbox  # noqa: E402

RULES, LABELS, CYCLES = 50, 20, 60
SEVERITIES = ("info", "warning", "critical")


def rules():
    out = []
    for i in range(RULES):
        rule = {"name": f"bench_rule_{i:02d}", "metric": "tokenwatch_collector_up", "threshold": 0.5,
                "for": "0s", "keep_firing_for": "0s", "severity": SEVERITIES[i % 3], "group": f"g{i % 10}",
                "summary": "Bench {series} at {value}"}
        if i % 10 == 9:
            rule["depends_on"] = [f"bench_rule_{i - 1:02d}"]
        out.append(rule)
    return parse_rules({"rule": out})


async def run(name: str, url: str, events: int) -> None:
    await upgrade(url)
    db = Database(make_engine(url))
    clock = ManualClock(1_700_000_000.0)
    settings = Settings(_env_file=None, telegram_alert_chat_id=-100, telegram_admin_ids=[1, 2],
                        alert_escalation_info="20s:chat", alert_escalation_warning="15s:chat,30s:dm",
                        alert_escalation_critical="10s:chat,20s:dm,40s:escalation_chat")
    engine = AlertEngine(db, clock, settings, rules(), Outbox(db, clock))
    await engine.start()
    rng = random.Random(8)
    series = [(r, s) for r in range(RULES) for s in range(LABELS)]
    p = min(1.0, events / (len(series) * CYCLES))
    breached = {key: False for key in series}
    expected: Counter[tuple[str, str]] = Counter()   # (series, kind)
    cpu = 0.0
    wall = time.perf_counter()
    for _ in range(CYCLES):
        clock.advance(1.0)
        now = clock.time()
        batch = []
        for key in series:
            if rng.random() < p:
                breached[key] = not breached[key]
                expected[(f"{key[0]}:{key[1]}", "fired" if breached[key] else "resolved")] += 1
            batch.append(Observation(rule=f"bench_rule_{key[0]:02d}", labels={"series": f"s{key[1]}"},
                                     value=1.0 if breached[key] else 0.0, threshold=0.5,
                                     breached=breached[key], at=now))
        t0 = time.process_time()
        await engine.observe(batch, now)
        await engine.tick(now)
        cpu += time.process_time() - t0
    wall = time.perf_counter() - wall

    async def fetch(session):
        ev = list((await session.exec(select(AlertEvent).where(AlertEvent.kind.in_(("fired", "resolved"))))).all())  # type: ignore[attr-defined]
        inc = list((await session.exec(select(AlertIncident))).all())
        out = list((await session.exec(select(OutboxMessage))).all())
        return ev, inc, out

    ev, incidents, outbox = await db.run(fetch)
    by_fp = {fp: f"{r}:{s}" for (r, s) in series
             for fp in [Observation(f"bench_rule_{r:02d}", {"series": f"s{s}"}, None, 0, False, 0).fingerprint]}
    recorded = Counter((by_fp.get(e.fingerprint or "", "?"), e.kind) for e in ev)
    lost = sum(max(0, n - recorded.get(k, 0)) for k, n in expected.items())
    extra = sum(max(0, n - expected.get(k, 0)) for k, n in recorded.items())
    dup = sum(n - 1 for n in Counter((e.fingerprint, e.kind, e.at) for e in ev).values() if n > 1)
    keys = {o.idempotency_key for o in outbox}
    announced = [i for i in incidents if i.announced]
    missing_open = sum(1 for i in announced if i.message_key not in keys)
    missing_resolved = sum(1 for i in announced if i.status == "resolved" and i.resolved_at is not None
                           and "merged into" not in i.title and f"{i.message_key}:resolved" not in keys)
    sends = sum(1 for o in outbox if o.method == "send")
    edits = sum(1 for o in outbox if o.method == "edit")
    print(f"{name}: {sum(expected.values())} transitions expected over {CYCLES} s of manual time, "
          f"{len(ev)} fired/resolved events recorded")
    print(f"  events lost {lost + missing_open + missing_resolved} (series {lost}, opening messages {missing_open}, "
          f"resolution pings {missing_resolved}), duplicated {dup + extra}")
    print(f"  incidents {len(incidents)} ({len(announced)} announced); messages queued {sends} new + {edits} edits "
          f"= {len(outbox)}")
    print(f"  engine CPU {cpu:.2f} s ({cpu / max(1, sum(expected.values())) * 1e6:.0f} µs per event), wall {wall:.1f} s")
    await engine.close()
    await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        await run("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args.events)
    async with scratch_postgres() as url:
        if url is not None:
            await run("postgresql", url, args.events)


if __name__ == "__main__":
    asyncio.run(main())
