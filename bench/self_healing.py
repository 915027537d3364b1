"""Benchmark: the adaptive service against a fixed configuration, side by side, through market faults.

Two processes start together, each with its own local market (DexScreener limit ``--api-rate``,
300 requests/min), its own fresh SQLite database holding ``--tokens`` (3,000) tokens and its own
pipeline under the real scheduler:

- ``adaptive``: the pipeline as the service wires it (``recovery.setup.build_recovery``: the flow
  controller sets the in-flight limit and the batch size; whatever else recovery wires, such as
  circuit breakers, comes with it);
- ``fixed``: the common hand-tuned setup, concurrency 4, batch 30, timeout 5 s, nothing adjusted.

Both markets go through the same phases at the same moments (``--scale`` shortens them all):
normal 2 min, 3 s added latency 2 min, 30 % errors (500/502/503) 1 min, full outage (503) 1 min,
normal 2 min. Demand exceeds the limit (every token is due every 10-45 s, the ceiling is
``api_rate x 30`` = 9,000 checks/min). For both it prints, per phase: token checks per minute as
a share of the ceiling (all, and successful), 429s, timeouts, requests the market received; then
requests sent during the outage as a share of the normal rate, seconds to full pace after the
outage, tokens starved at the end of the errors phase, and the adaptive side's knob moves.

    .venv/bin/python bench/self_healing.py                 # about 8.5 minutes
    .venv/bin/python bench/self_healing.py --scale 0.25    # about 2.5 minutes

Aims: >= 90 % of the ceiling in the normal and latency phases, successful checks >= 65 % of the
ceiling in the errors phase with no token starved, <= 10 % of the normal request rate during the
outage, full pace within 30 s after it, no 429.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BATCH = 30
FULL_PACE = 0.9   # "full pace": successful checks at 90 % of what the first normal phase held
PACE_WINDOW_S = 5.0  # measured over this many seconds


@dataclass(frozen=True)
class Phase:
    name: str
    minutes: float
    faults: dict


PHASES = (
    Phase("normal", 2.0, {}),
    Phase("latency", 2.0, {"latency_ms": 3000}),
    Phase("errors", 1.0, {"error_rate": 0.3, "error_codes": [500, 502, 503]}),
    Phase("outage", 1.0, {"outage": True, "outage_mode": "503"}),
    Phase("after", 2.0, {}),
)


# --- one side (runs in its own process) ------------------------------------------------------------
async def _side(variant: str, args: argparse.Namespace, ready: Any, go: Any) -> dict:
    from sqlalchemy import func, or_, select

    from app.clock import SYSTEM_CLOCK
    from app.db import Database, make_engine
    from app.migrate import upgrade
    from app.scheduler import JobSpec, Scheduler
    from app.settings import Settings
    from monitoring.setup import attach_pool_verifier
    from recovery.context import RecoveryContext
    from recovery.setup import build_recovery
    from simulator.server import LocalMarket
    from tokens.models import LIVE_STATUSES, Token
    from tokens.pipeline import Pipeline
    from tokens.repository import insert_token
    from tokens.sql import execute

    tmp = Path(tempfile.mkdtemp(prefix=f"tw_heal_{variant}_"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await upgrade(url)
    fixed = variant == "fixed"
    settings = Settings(database_url=url, api_rate_limit_per_min=args.api_rate, process_interval_s=1.0,
                        fetch_concurrency=4, batch_size=BATCH, api_timeout_s=5.0 if fixed else 10.0, _env_file=None)
    db = Database(make_engine(url))
    market = LocalMarket(seed=42, rate_limit_per_min=args.api_rate, autostart_flow=False, port=0)
    await market.start()
    pipeline = Pipeline(settings, db, SYSTEM_CLOCK, market.dexscreener_base_url, market.pumpportal_ws_url,
                        listen=False)
    scheduler = Scheduler(settings, SYSTEM_CLOCK)
    recovery = None
    actions: list = []
    try:
        mints = market.model.seed_tokens(args.tokens)
        now = SYSTEM_CLOCK.time()
        for start in range(0, len(mints), 500):
            async def insert_chunk(session, chunk=mints[start:start + 500]):
                for mint in chunk:
                    await insert_token(session, mint, now=now, source="bench")
            await db.run(insert_chunk)
        await pipeline.start()
        assert pipeline.processor is not None
        attach_pool_verifier(pipeline, db, settings, SYSTEM_CLOCK)  # as in the service
        if not fixed:
            recovery = await build_recovery(RecoveryContext(settings=settings, db=db, clock=SYSTEM_CLOCK,
                                                            pipeline=pipeline))
            recovery.knobs.on_action(actions.append)
        spec = next(j for j in pipeline.jobs() if j.id == "pipeline.process")
        scheduler.add(JobSpec(spec.id, spec.func, spec.interval_s, spec.budget_s))

        ready.set()
        start_at = await asyncio.to_thread(go.recv)  # the same wall-clock start for both sides
        await asyncio.sleep(max(0.0, start_at - time.time()))
        scheduler.start()
        t0 = time.monotonic()
        processor, api = pipeline.processor, pipeline.api_stats
        series: list[tuple] = []  # one row per second
        boundaries: list[float] = []
        starved = None
        end = 0.0
        for phase in PHASES:
            await market.reset_faults()
            if phase.faults:
                await market.apply_faults(dict(phase.faults))
            boundaries.append(time.monotonic() - t0)
            end += phase.minutes * 60.0 * args.scale
            while (elapsed := time.monotonic() - t0) < end:
                await asyncio.sleep(min(1.0, end - elapsed))
                c = pipeline.counters
                series.append((time.monotonic() - t0, c.checks, c.checks - c.check_failures,
                               market.stats.requests.get("tokens", 0) + market.stats.requests.get("token_pairs", 0)
                               + market.stats.faults.get("outage", 0),
                               market.stats.served_429, api.total("timeouts"), processor.limit(),
                               processor.batch_size(), processor.batches_in_flight))
            if phase.name == "errors":  # tokens with no successful check for longer than the aim allows
                cutoff = SYSTEM_CLOCK.time() - args.starve_s

                async def count_starved(s, cutoff=cutoff):
                    c = Token.__table__.c  # type: ignore[attr-defined]
                    stmt = select(func.count()).select_from(Token).where(
                        c.status.in_(LIVE_STATUSES), or_(c.last_success_at.is_(None), c.last_success_at < cutoff))
                    return int((await execute(s, stmt)).scalar_one())

                starved = await db.run(count_starved)
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        await scheduler.shutdown()
        return {"variant": variant, "series": series, "boundaries": boundaries, "starved": starved,
                "max_in_flight_at_market": market.stats.max_in_flight,
                "actions": [(round(a.at, 1), a.controller, a.knob, a.before, a.after, a.reason) for a in actions]}
    finally:
        if recovery is not None:
            await recovery.stop()
        await pipeline.stop()
        await market.stop()
        await db.dispose()


def _child(variant: str, args: argparse.Namespace, ready: Any, go: Any, out: Any) -> None:
    logging.basicConfig(level=logging.WARNING, format=f"{variant} %(levelname)s %(name)s: %(message)s")
    try:
        out.put(asyncio.run(_side(variant, args, ready, go)))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        out.put({"variant": variant, "error": f"{type(exc).__name__}: {exc}"})
        raise


# --- figures -------------------------------------------------------------------------------------
def _at(series: list[tuple], t: float) -> tuple:
    """The last row at or before ``t`` (the zero row before the first)."""
    row: tuple = (0.0, 0, 0, 0, 0, 0, 0, 0, 0)
    for r in series:
        if r[0] > t + 1e-9:
            break
        row = r
    return row


def figures(result: dict, args: argparse.Namespace) -> dict:
    series, bounds = result["series"], result["boundaries"]
    ceiling = args.api_rate * BATCH
    ends = bounds[1:] + [series[-1][0]]
    phases = {}
    for phase, start, end in zip(PHASES, bounds, ends):
        a, b = _at(series, start), _at(series, end)
        minutes = max(1e-9, (b[0] - a[0]) / 60.0)
        rows = [r for r in series if start < r[0] <= end]
        phases[phase.name] = {
            "checks_share": (b[1] - a[1]) / minutes / ceiling,
            "ok_share": (b[2] - a[2]) / minutes / ceiling,
            "requests": b[3] - a[3],
            "requests_per_min": (b[3] - a[3]) / minutes,
            "429s": b[4] - a[4],
            "timeouts": b[5] - a[5],
            "limit": (min(r[6] for r in rows), max(r[6] for r in rows)) if rows else None,
            "batch": (min(r[7] for r in rows), max(r[7] for r in rows)) if rows else None,
        }
    normal_rpm = phases["normal"]["requests_per_min"]
    outage = phases["outage"]
    normal_ok = phases["normal"]["ok_share"] * ceiling / 60.0  # successful checks per second held when normal
    back_at = None
    outage_end = bounds[PHASES.index(next(p for p in PHASES if p.name == "after"))]
    for r in series:
        if r[0] < outage_end:
            continue
        later = _at(series, r[0] + PACE_WINDOW_S)
        if later[0] - r[0] < PACE_WINDOW_S - 1.5:
            break
        if (later[2] - r[2]) / (later[0] - r[0]) >= FULL_PACE * normal_ok:
            back_at = r[0] - outage_end
            break
    return {"phases": phases, "outage_requests": outage["requests"],
            "outage_share": outage["requests_per_min"] / normal_rpm if normal_rpm else None,
            "full_pace_after_s": back_at, "starved": result["starved"],
            "429s": series[-1][4], "timeouts": series[-1][5]}


def report(results: dict[str, dict], args: argparse.Namespace) -> bool:
    fig = {name: figures(r, args) for name, r in results.items()}
    names = ["adaptive", "fixed"]
    ceiling = args.api_rate * BATCH
    print(f"\n{args.tokens} tokens, market limit {args.api_rate}/min, ceiling {ceiling} checks/min, "
          f"scale {args.scale:g} (phases: " + ", ".join(f"{p.name} {p.minutes * 60 * args.scale:.0f}s" for p in PHASES)
          + ")")
    print(f"{'phase':10s} {'':>22s}" + "".join(f"{n:>28s}" for n in names))
    for phase in PHASES:
        rows = [("checks/min, share of ceiling", lambda f: f"{f['checks_share']:.1%}"),
                ("successful checks", lambda f: f"{f['ok_share']:.1%}"),
                ("requests/min at the market", lambda f: f"{f['requests_per_min']:.0f}"),
                ("429s / timeouts", lambda f: f"{f['429s']} / {f['timeouts']}"),
                ("in-flight limit min-max", lambda f: f"{f['limit'][0]}-{f['limit'][1]}" if f["limit"] else "-"),
                ("batch size min-max", lambda f: f"{f['batch'][0]}-{f['batch'][1]}" if f["batch"] else "-")]
        for i, (label, fmt) in enumerate(rows):
            cells = "".join(f"{fmt(fig[n]['phases'][phase.name]):>28s}" for n in names)
            print(f"{phase.name if i == 0 else '':10s} {label:>30s}{cells}")
    print()
    for label, key, fmt in [("requests during the outage", "outage_requests", "{:.0f}"),
                            ("  as a share of the normal rate", "outage_share", "{:.0%}"),
                            ("seconds to full pace after it", "full_pace_after_s", "{:.0f}"),
                            (f"tokens starved (>{args.starve_s:.0f}s) after errors", "starved", "{}"),
                            ("429s in all", "429s", "{}"), ("timeouts in all", "timeouts", "{}")]:
        cells = "".join(f"{'never' if fig[n][key] is None else fmt.format(fig[n][key]):>28s}" for n in names)
        print(f"{label:41s}{cells}")
    for n in names:
        print(f"{n}: at most {results[n]['max_in_flight_at_market']} requests in flight at the market")
    acts = results["adaptive"]["actions"]
    print(f"adaptive: {len(acts)} knob actions; " + ", ".join(
        f"{k}->{after:g}" for _, _, k, _, after, _ in acts[-6:]))
    a = fig["adaptive"]
    p = a["phases"]
    aims = {
        "normal >= 90% of ceiling": p["normal"]["checks_share"] >= 0.9,
        "latency >= 90% of ceiling": p["latency"]["checks_share"] >= 0.9,
        "errors: successful >= 65%": p["errors"]["ok_share"] >= 0.65,
        "errors: no token starved": a["starved"] == 0,
        "outage <= 10% of normal requests": a["outage_share"] is not None and a["outage_share"] <= 0.10,
        "full pace within 30 s": a["full_pace_after_s"] is not None and a["full_pace_after_s"] <= 30,
        "0 429s": a["429s"] == 0,
    }
    print("\naims (adaptive): " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in aims.items()))
    return all(aims.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every phase's length (0.25: quick run)")
    parser.add_argument("--tokens", type=int, default=3000, help="tracked tokens (default 3000)")
    parser.add_argument("--api-rate", type=int, default=300, help="the market's requests/min limit (300)")
    parser.add_argument("--starve-s", type=float, default=None,
                        help="a token with no successful check for this long is starved "
                             "(default: the errors phase plus 60 s)")
    args = parser.parse_args(argv)
    if args.starve_s is None:
        args.starve_s = 60.0 * args.scale + 60.0
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    sides = {}
    for variant in ("adaptive", "fixed"):
        ready = ctx.Event()
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=_child, args=(variant, args, ready, child_end, out), name=f"bench-{variant}")
        proc.start()
        sides[variant] = (proc, ready, parent_end)
    for variant, (proc, ready, _) in sides.items():
        if not ready.wait(timeout=300):
            raise SystemExit(f"{variant} did not get ready")
    start_at = time.time() + 1.0
    for _, _, pipe in sides.values():
        pipe.send(start_at)
    total = sum(p.minutes for p in PHASES) * 60 * args.scale
    print(f"both sides seeded; running {total:.0f}s of phases", flush=True)
    results = {}
    for _ in sides:
        r = out.get(timeout=total + 300)
        if "error" in r:
            raise SystemExit(f"{r['variant']} failed: {r['error']}")
        results[r["variant"]] = r
    for proc, _, _ in sides.values():
        proc.join(timeout=30)
    return 0 if report(results, args) else 1


if __name__ == "__main__":
    raise SystemExit(main())
