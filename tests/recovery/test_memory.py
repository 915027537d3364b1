"""The memory policy: k samples before acting, cleanups accounted, caches that grew trimmed,
thresholds that move within bounds, and a leak named by component and line (real tracemalloc,
synthetic resident memory and a ManualClock)."""
from __future__ import annotations

import asyncio
import random
import threading

import pytest

from app.clock import ManualClock
from app.memory import MIB, Reclaimers
from recovery.knobs import Action, KnobRegistry
from recovery.memory import MemoryParams, MemoryPolicy, component_of_path
from tests.recovery.leaky import LeakyCache, leak_line

LIMIT = 1024 * MIB


class Host:
    """Synthetic resident memory: ``base`` plus what the test adds; a cache clear gives its bytes back."""

    def __init__(self, base: float = 300 * MIB) -> None:
        self.base = base
        self.extra = 0.0

    def rss(self) -> int:
        return int(self.base + self.extra)

    async def read(self) -> tuple[int, int | None]:
        return self.rss(), LIMIT


def make(host: Host, **params: float) -> tuple[MemoryPolicy, ManualClock, Reclaimers, list[Action]]:
    clock = ManualClock(1_700_000_000.0)
    reclaimers = Reclaimers(rss=host.rss, collect=lambda: 0, trim=lambda: True)
    knobs = KnobRegistry(clock)
    actions: list[Action] = []
    knobs.on_action(actions.append)
    policy = MemoryPolicy(host.read, clock=clock, reclaimers=reclaimers, knobs=knobs,
                          params=MemoryParams(**params), collect=lambda: 0)  # type: ignore[arg-type]
    return policy, clock, reclaimers, actions


async def run(policy: MemoryPolicy, clock: ManualClock, seconds: float, step: float = 10.0) -> None:
    t = 0.0
    while t < seconds:
        await policy.tick()
        clock.advance(step)
        t += step


async def test_a_spike_waits_and_is_measured_again() -> None:
    host = Host()
    policy, clock, _, actions = make(host)
    await run(policy, clock, 60)
    host.extra = 700 * MIB                  # 97% of the limit, for two samples only
    await run(policy, clock, 20)
    assert policy.state == "critical" or policy.state == "spike"
    host.extra = 0
    await run(policy, clock, 60)
    assert [a for a in actions if a.knob is None] == []
    assert policy.state == "ok"


async def test_critical_for_k_samples_cleans_up_once_with_before_and_after() -> None:
    host = Host()
    policy, clock, reclaimers, actions = make(host)
    cache = {"k": 1}

    def clear() -> None:
        cache.clear()
        host.extra -= 100 * MIB

    reclaimers.register("charts.cache", clear, size=lambda: len(cache))
    host.extra = 680 * MIB                  # 96%
    await run(policy, clock, 60)
    [cleanup] = [a for a in actions if a.knob is None]
    assert cleanup.controller == "memory" and "critical" in cleanup.reason
    assert cleanup.before is not None and cleanup.after is not None
    assert cleanup.before - cleanup.after == 100 * MIB
    assert "caches 100 MiB" in cleanup.detail and "gc" in cleanup.detail
    assert cache == {}


async def test_warning_with_grown_caches_trims_only_those() -> None:
    host = Host()
    policy, clock, reclaimers, actions = make(host)
    grown: list[int] = [0] * 10
    steady: list[int] = [0] * 50
    reclaimers.register("tokens.pool_cache", grown.clear, size=lambda: len(grown))
    reclaimers.register("charts.cache", steady.clear, size=lambda: len(steady))
    await run(policy, clock, 60)            # memory fine: sizes remembered
    grown.extend([0] * 500)
    host.extra = 560 * MIB                  # 84% > 80%
    await run(policy, clock, 40)
    [cleanup] = [a for a in actions if a.knob is None]
    assert "caches grew: tokens.pool_cache 10 -> 510" in cleanup.reason
    assert grown == [] and len(steady) == 50


async def test_every_cleanup_is_accounted_whoever_asked() -> None:
    host = Host()
    policy, clock, reclaimers, actions = make(host)
    await reclaimers.reclaim(reason="memory_high: 91% before alerting")
    [a] = actions
    assert (a.controller, a.knob, a.reason) == ("memory", None, "memory_high: 91% before alerting")
    assert policy.cleanups == 1


async def test_thresholds_rise_when_free_and_steady_and_tighten_under_pressure() -> None:
    host = Host(200 * MIB)                  # 80% free
    policy, clock, _, actions = make(host, adapt_s=600)
    await run(policy, clock, 1300)
    assert policy.warn_share > 0.80 and policy.critical_share > 0.92
    raised = [a for a in actions if a.knob == "memory_warn_share"]
    assert raised and raised[0].before == 0.80 and "free" in raised[0].reason
    host.base = 850 * MIB                   # 83%: near the warning, pressure
    await run(policy, clock, 1300)
    assert not policy.leak_suspected        # one step up is not a climb
    assert policy.warn_share < raised[-1].after  # type: ignore[operator]
    assert 0.70 <= policy.warn_share <= 0.90 and 0.85 <= policy.critical_share <= 0.97


async def test_an_operator_pin_holds_the_threshold() -> None:
    host = Host(200 * MIB)
    policy, clock, _, _ = make(host, adapt_s=600)
    assert policy.knobs is not None
    policy.knobs.adjust("memory_warn_share", 0.75, controller="operator", reason="/tune", actor="ann")
    await run(policy, clock, 1300)
    assert policy.warn_share == 0.75


async def test_a_component_leaking_2_mib_a_minute_is_named_within_10_minutes() -> None:
    host = Host()
    policy, clock, reclaimers, actions = make(host)
    leaky = LeakyCache()
    reclaimers.register("tokens.leaky_cache", leaky.clear, size=lambda: len(leaky))
    rng = random.Random(3)
    t = 0.0
    named_at = None
    try:
        while t < 600 and named_at is None:
            leaky.add(int(2 * MIB / 6))     # 2 MiB a minute, every 10 s
            host.extra = leaky.nbytes + rng.uniform(-1, 1) * MIB
            await policy.tick()
            if policy.leak is not None:
                named_at = t
            clock.advance(10)
            t += 10
    finally:
        policy.close()
    assert named_at is not None and named_at <= 600
    leak = policy.leak
    assert leak is not None
    assert leak.component == "tests"        # the leaking file lives under tests/
    assert leak.source == f"tests/recovery/leaky.py:{leak_line()}"
    assert 1.5 * MIB <= leak.rate <= 2.5 * MIB
    assert "tokens.leaky_cache" in leak.structures
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in policy.samples()}
    assert samples[("tokenwatch_memory_leak_bytes_per_minute", ())] == leak.rate
    assert any(a.detail.startswith("leak diagnosis:") and "tests/recovery/leaky.py" in a.detail for a in actions)


async def test_a_healthy_half_hour_reports_no_leak() -> None:
    host = Host()
    policy, clock, reclaimers, _ = make(host)
    rng = random.Random(7)
    cache: list[int] = []
    reclaimers.register("charts.cache", cache.clear, size=lambda: len(cache))
    for i in range(180):                   # 30 minutes, a sample every 10 s
        # noise, a bounded cache that fills in 4 MiB steps every 10 minutes (0.4 MiB/min, under the
        # 1 MiB/min that counts as a leak), garbage that comes and goes
        host.extra = rng.uniform(-3, 3) * MIB + min(i // 60, 3) * 4 * MIB + (20 * MIB if i % 17 == 0 else 0)
        await policy.tick()
        assert not policy.leak_suspected, i
        clock.advance(10)
    assert policy.leak is None
    assert [s.value for s in policy.samples() if s.name == "tokenwatch_memory_leak_bytes_per_minute"] == [0.0]


def test_sources_are_attributed_to_components() -> None:
    from recovery.memory import PROJECT_ROOT
    assert component_of_path(str(PROJECT_ROOT / "tokens" / "pools.py")) == "tokens"
    assert component_of_path("/usr/lib/python3.11/site-packages/aiogram/x.py") == "third-party"
    assert component_of_path("/usr/lib/python3.11/json/decoder.py") == "python"


async def test_build_recovery_wires_the_policy_to_the_real_process(sqlite_db) -> None:
    from app.settings import Settings
    from monitoring.collector import CollectorRegistry
    from monitoring.host.process import ProcessCollector
    from recovery.context import RecoveryContext
    from recovery.setup import build_recovery

    clock = ManualClock(1_700_000_000.0)
    registry = CollectorRegistry(clock=clock)
    registry.register(ProcessCollector(clock=clock))
    from app.scheduler import Scheduler
    from app.supervisor import Supervisor

    ctx = RecoveryContext(settings=Settings(), db=sqlite_db, clock=clock, collectors=registry,
                          scheduler=Scheduler(Settings(), clock), supervisor=Supervisor(clock))
    recovery = await build_recovery(ctx)
    assert ctx.scheduler is not None and ctx.supervisor is not None
    assert ctx.scheduler.restart_gate is recovery.watchdog and ctx.supervisor.restart_gate is recovery.watchdog
    assert recovery.memory is not None and recovery.slow_queries is not None
    assert [j.id for j in recovery.jobs()] == ["recovery.memory", "recovery.slow_queries", "recovery.ledger_flush"]
    assert {k.name for k in recovery.knobs.knobs()} >= {"memory_warn_share", "memory_critical_share"}
    await recovery.memory.tick()
    samples = await registry.collect_all(clock.time())
    names = {s.name for s in samples}
    assert {"tokenwatch_memory_baseline_bytes", "tokenwatch_memory_warn_share",
            "tokenwatch_memory_leak_bytes_per_minute"} <= names
    await recovery.stop()
    assert not {"memory_policy", "watchdog"} & {c.name for c in registry.collectors}


class RecordingTracer:
    """A tracer that records when tracing is on; ``take`` can be made to block until released."""

    def __init__(self) -> None:
        self.on = False
        self.starts = 0
        self.gate: threading.Event | None = None
        self.taking = threading.Event()

    def start(self) -> None:
        self.on, self.starts = True, self.starts + 1

    def stop(self) -> None:
        self.on = False

    def take(self) -> object:
        self.taking.set()
        if self.gate is not None:
            self.gate.wait(10)
        return object()

    def diff(self, before: object, after: object) -> list:
        return []


def leaking(tracer: RecordingTracer, busy: list[bool]) -> tuple[MemoryPolicy, ManualClock, Host, list[Action]]:
    host = Host()
    clock = ManualClock(1_700_000_000.0)
    knobs = KnobRegistry(clock)
    actions: list[Action] = []
    knobs.on_action(actions.append)
    policy = MemoryPolicy(host.read, clock=clock, reclaimers=Reclaimers(rss=host.rss, collect=lambda: 0),
                          knobs=knobs, params=MemoryParams(), collect=lambda: 0, tracer=tracer,
                          busy=lambda: busy[0])
    return policy, clock, host, actions


async def climb(policy: MemoryPolicy, clock: ManualClock, host: Host, seconds: float) -> None:
    for _ in range(int(seconds // 10)):
        host.extra += 4 * MIB / 6           # 4 MiB a minute
        await policy.tick()
        clock.advance(10)


async def test_a_busy_process_gets_no_diagnosis_and_one_in_progress_stops() -> None:
    """tracemalloc slows allocation-heavy code 6-40x: on a busy process it would take the service down."""
    tracer, busy = RecordingTracer(), [True]
    policy, clock, host, actions = leaking(tracer, busy)
    await climb(policy, clock, host, 600)
    assert policy.leak_suspected and tracer.starts == 0       # suspected, but not traced while busy
    busy[0] = False
    await climb(policy, clock, host, 30)
    assert tracer.on and tracer.starts == 1                   # the process calmed down: diagnosing
    busy[0] = True
    await climb(policy, clock, host, 10)
    assert not tracer.on                                      # busy again: tracing off at the next sample
    assert [a.detail for a in actions if a.reason == "leak diagnosis abandoned"] == [
        "tracemalloc off: the process is busy (CPU over the load-shedding threshold)"]
    busy[0] = False
    await climb(policy, clock, host, 600)
    assert tracer.starts == 1                                 # not again before rediagnose_s (30 min)
    assert policy.leak is None


async def test_a_diagnosis_cancelled_mid_snapshot_leaves_tracing_off() -> None:
    """The job's budget cancels a tick whose snapshot runs long: tracemalloc must not stay on."""
    tracer, busy = RecordingTracer(), [False]
    policy, clock, host, actions = leaking(tracer, busy)
    tracer.gate = threading.Event()
    for _ in range(120):
        host.extra += 4 * MIB / 6
        tick = asyncio.create_task(policy.tick())
        await asyncio.sleep(0)
        while not tick.done() and not tracer.taking.is_set():
            await asyncio.sleep(0.01)
        if tracer.taking.is_set():
            break
        await tick
        clock.advance(10)
    assert tracer.on and tracer.taking.is_set()               # the first snapshot is being taken
    tick.cancel()
    with pytest.raises(asyncio.CancelledError):
        await tick
    tracer.gate.set()
    assert not tracer.on
    assert [a.reason for a in actions if a.reason == "leak diagnosis abandoned"] == ["leak diagnosis abandoned"]
    tracer.gate = None
    clock.advance(10)
    await climb(policy, clock, host, 300)
    assert tracer.starts == 1 and not tracer.on               # not retried at once
