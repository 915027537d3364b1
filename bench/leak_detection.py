"""Leak detection: how soon a component leaking 2 MiB a minute is named, and that a healthy half
hour names nothing.

    .venv/bin/python bench/leak_detection.py                 # synthetic: 10 seeds of each, a few seconds
    .venv/bin/python bench/leak_detection.py --real --speed 20   # the real process, time compressed

Synthetic (default): a ManualClock, resident memory synthesised as 300 MiB + the leak + noise
(+-1 MiB, plus garbage spikes of 20 MiB and a cache that fills in steps to 12 MiB), a sample every
10 s, the default ``MemoryParams``; the leaking component really allocates (``LeakyCache`` below)
so the diagnosis is real ``tracemalloc``. Printed per scenario: minutes from the leak's start to
the first suspicion and to the named culprit (component and line), and how many healthy runs were
suspected at all.

Real (``--real``): the real process's resident memory (``ProcessCollector.memory``), real
``gc.collect()`` and ``malloc_trim``, wall-clock time with every interval of the policy divided by
``--speed`` and the leak sped up by the same factor, so ``--speed 20`` plays 10 minutes in 30 s.
Also prints what one ``gc.collect()`` and one ``tracemalloc`` snapshot cost here.

    .venv/bin/python bench/leak_detection.py --tracing-cost   # how much slower tracing makes the process
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clock import SYSTEM_CLOCK, ManualClock  # noqa: E402
from app.memory import MIB, Reclaimers, resident_bytes  # noqa: E402
from monitoring.host.process import ProcessCollector  # noqa: E402
from recovery.memory import TRACE_FRAMES, MemoryParams, MemoryPolicy  # noqa: E402

LIMIT = 4096 * MIB


class LeakyCache:
    """The deliberately leaking component: keeps every payload."""

    def __init__(self) -> None:
        self.items: list[bytes] = []

    def add(self, nbytes: int) -> None:
        self.items.append(b"\x01" * nbytes)

    @property
    def nbytes(self) -> int:
        return sum(len(i) for i in self.items)


async def synthetic(seed: int, *, leak: bool, minutes: float) -> tuple[float | None, float | None, str]:
    """(minutes to suspicion, minutes to the named culprit, culprit) of one synthetic run."""
    rng = random.Random(seed)
    clock = ManualClock(1_700_000_000.0)
    cache = LeakyCache()
    extra = {"v": 0.0}

    def rss() -> int:
        return int(300 * MIB + extra["v"])

    async def read() -> tuple[int, int | None]:
        return rss(), LIMIT

    reclaimers = Reclaimers(rss=rss, collect=lambda: 0, trim=lambda: True)
    reclaimers.register("tokens.leaky", lambda: None, size=lambda: len(cache.items))
    policy = MemoryPolicy(read, clock=clock, reclaimers=reclaimers, params=MemoryParams(), collect=lambda: 0)
    warm = rng.uniform(60, 300)                    # the leak starts a few minutes into the run
    suspected = named = None
    culprit = ""
    t = 0.0
    try:
        while t < minutes * 60:
            if leak and t >= warm:
                cache.add(int(2 * MIB / 6))
            steps = min(int(t // 300), 3) * 4 * MIB   # a bounded cache filling in steps
            spike = 20 * MIB if rng.random() < 0.05 else 0.0
            extra["v"] = cache.nbytes + steps + spike + rng.uniform(-1, 1) * MIB
            await policy.tick()
            since = (t - warm) / 60 if leak else t / 60
            if policy.leak_suspected and suspected is None:
                suspected = since
            if policy.leak is not None and named is None:
                named, culprit = since, f"{policy.leak.component} {policy.leak.source}"
                if leak:
                    break
            clock.advance(10)
            t += 10
    finally:
        policy.close()
    return suspected, named, culprit


async def run_synthetic(seeds: int) -> None:
    leaks = [await synthetic(s, leak=True, minutes=20) for s in range(seeds)]
    named = [n for _, n, _ in leaks if n is not None]
    sus = [s for s, _, _ in leaks if s is not None]
    print(f"leak 2 MiB/min, {seeds} seeds: named {len(named)}/{seeds}; minutes from the leak's start to "
          f"suspicion median {statistics.median(sus):.1f} max {max(sus):.1f}, to the named culprit "
          f"median {statistics.median(named):.1f} max {max(named):.1f}")
    within = sum(1 for n in named if n <= 10)
    print(f"  named within 10 minutes: {within}/{seeds}; culprits: {sorted({c for _, _, c in leaks})}")
    healthy = [await synthetic(100 + s, leak=False, minutes=30) for s in range(seeds)]
    bad = [h for h in healthy if h[0] is not None]
    print(f"healthy 30 min, {seeds} seeds: suspected {len(bad)}, named {sum(1 for h in healthy if h[1] is not None)}")


async def run_real(speed: float, minutes: float) -> None:
    process = ProcessCollector(clock=SYSTEM_CLOCK)
    p = MemoryParams()
    params = MemoryParams(sample_s=p.sample_s / speed, baseline_s=p.baseline_s / speed,
                          leak_window_s=p.leak_window_s / speed, leak_min_span_s=p.leak_min_span_s / speed,
                          leak_min_rate=p.leak_min_rate * speed, diagnose_s=p.diagnose_s / speed,
                          adapt_s=p.adapt_s / speed, cleanup_cooldown_s=p.cleanup_cooldown_s / speed)
    reclaimers = Reclaimers(rss=resident_bytes)
    cache = LeakyCache()
    reclaimers.register("tokens.leaky", lambda: None, size=lambda: len(cache.items))
    policy = MemoryPolicy(process.memory, clock=SYSTEM_CLOCK, reclaimers=reclaimers, params=params)
    start = last = time.monotonic()
    named = None
    try:
        while time.monotonic() - start < minutes * 60 / speed:
            now = time.monotonic()
            cache.add(int(2 * MIB * speed * (now - last) / 60))   # 2 MiB per simulated minute
            last = now
            await policy.tick()
            if policy.leak is not None:
                named = (time.monotonic() - start) * speed / 60
                break
            await asyncio.sleep(params.sample_s)
    finally:
        policy.close()
    if named is None:
        print(f"real, speed {speed:g}: not named within {minutes:g} (simulated) minutes")
    else:
        assert policy.leak is not None
        print(f"real, speed {speed:g}: named after {named:.1f} simulated minutes: {policy.leak.describe()}")
    t0 = time.perf_counter()
    gc.collect()
    gc_ms = (time.perf_counter() - t0) * 1000
    tracemalloc.start(12)
    junk = [bytearray(100) for _ in range(50_000)]
    t0 = time.perf_counter()
    tracemalloc.take_snapshot()
    snap_ms = (time.perf_counter() - t0) * 1000
    tracemalloc.stop()
    del junk
    print(f"here: one gc.collect() {gc_ms:.1f} ms; one tracemalloc snapshot (50,000 blocks traced) {snap_ms:.0f} ms")


def _allocating_work(rounds: int = 200_000) -> float:
    """Allocation-heavy Python (a JSON round trip of a small dict, ``rounds`` times); seconds taken."""
    t0 = time.perf_counter()
    for i in range(rounds):
        json.loads(json.dumps({"a": i, "b": [i, str(i)], "c": {"x": 1.5}}))
    return time.perf_counter() - t0


def tracing_slowdown(frames: tuple[int, ...] = (1, 4, TRACE_FRAMES)) -> None:
    """How many times slower allocation-heavy code runs while ``tracemalloc`` traces (the diagnosis'
    cost to the whole process, why the policy does not diagnose a busy process)."""
    base = _allocating_work()
    shown = []
    for n in frames:
        tracemalloc.start(n)
        try:
            shown.append(f"{n} frame{'s' if n > 1 else ''} {_allocating_work() / base:.1f}x")
        finally:
            tracemalloc.stop()
    print(f"here: allocation-heavy code with tracemalloc on: {', '.join(shown)} (untraced {base:.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--speed", type=float, default=20.0)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--tracing-cost", action="store_true", help="only how much tracemalloc slows the process")
    args = ap.parse_args()
    if args.tracing_cost:
        tracing_slowdown()
    elif args.real:
        asyncio.run(run_real(args.speed, args.minutes))
    else:
        asyncio.run(run_synthetic(args.seeds))


if __name__ == "__main__":
    main()
