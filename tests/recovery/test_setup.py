"""build_recovery over a real (unstarted) pipeline, on SQLite and PostgreSQL: the pipeline's knobs are
registered, what is queued is written at stop, and an operator's pin is back after a restart."""
from __future__ import annotations

from app.clock import ManualClock
from app.db import Database, make_engine
from app.settings import Settings
from recovery.context import RecoveryContext
from recovery.ledger_queries import recent_actions
from recovery.setup import build_recovery
from tokens.pipeline import Pipeline

NOWHERE = "http://127.0.0.1:9"


async def start(db_url: str, clock: ManualClock, collectors=None):
    settings = Settings(_env_file=None, database_url=db_url, api_timeout_s=2.0)
    db = Database(make_engine(db_url), retry_base_s=0.01)
    pipeline = Pipeline(settings, db, clock, NOWHERE, "ws://127.0.0.1:9")
    await pipeline.start()
    ctx = RecoveryContext(settings=settings, db=db, clock=clock, pipeline=pipeline, collectors=collectors)
    recovery = await build_recovery(ctx)

    async def stop() -> None:
        await recovery.stop()
        await pipeline.stop()
        await db.dispose()
    return ctx, recovery, stop


async def test_the_pipelines_knobs_and_a_pin_across_a_restart(db_url):
    clock = ManualClock(1_700_000_000.0)
    ctx, recovery, stop = await start(db_url, clock)
    try:
        assert {"batch_size", "fetch_concurrency", "timeout:token_pairs", "timeout:token_profiles",
                "timeout:tokens_batch"} <= {k.name for k in ctx.knobs.knobs()}
        assert recovery.ledger.jobs()[0].id == "recovery.ledger_flush"
        assert (await recovery.controls.set("timeout:tokens_batch", "7s", "@ann")).changed
        ctx.knobs.adjust("batch_size", 10, controller="aimd", reason="slow batches")   # queued, not flushed
        assert ctx.pipeline.processor.batch_size() == 10 and recovery.ledger.queued == 1
    finally:
        await stop()

    ctx, recovery, stop = await start(db_url, clock)
    try:
        assert ctx.pipeline.timeouts.timeout_s("tokens_batch") == 7.0          # the pin, restored
        assert ctx.knobs.pinned("timeout:tokens_batch").actor == "@ann"
        assert ctx.pipeline.processor.batch_size() == 30                       # not pinned: the setting again
        assert ctx.knobs.adjust("timeout:tokens_batch", 3.0, controller="rto", reason="fast") is None
        [last] = await recent_actions(ctx.db, limit=1)
        assert (last.controller, last.knob, last.after) == ("aimd", "batch_size", 10)   # written at stop
    finally:
        await stop()


async def test_no_leak_diagnosis_while_load_shedding_reads_the_cpu_over_its_threshold(sqlite_url):
    from monitoring.collector import CollectorRegistry
    from monitoring.host.process import ProcessCollector

    clock = ManualClock(1_700_000_000.0)
    registry = CollectorRegistry(clock=clock)
    registry.register(ProcessCollector(clock=clock))
    _, recovery, stop = await start(sqlite_url, clock, collectors=registry)
    try:
        assert recovery.memory is not None and recovery.shedding is not None
        assert not recovery.memory.busy()
        recovery.shedding.observe(0.95, clock.time())          # 95% of a core
        assert recovery.memory.busy()
        recovery.shedding.observe(0.50, clock.time() + 10)
        assert not recovery.memory.busy()
    finally:
        await stop()
