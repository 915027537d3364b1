"""What each process runs: ``tokenwatch worker`` only the pipeline's share (never a singleton); of
two ``tokenwatch run`` on one PostgreSQL and Redis, the leader runs the singletons and the standby
only the pipeline, until the leader stops and the standby takes over. /status and /metrics show
each process and the whole. Real services in this process (console chat, local market)."""
from __future__ import annotations

import io

import pytest

from app.settings import Settings
from monitoring import metric_names as m
from tests.conftest import REDIS_TEST_URL
from tokenwatch.cluster import render_processes
from tokenwatch.service import EVERY_PROCESS, Service

SINGLETONS = {"alerts.tick", "alerts.quiet", "monitoring.rollup", "pipeline.archive", "delivery.prune"}
SINGLETON_LOOPS = {"bot.outbox_sender", "bot.console"}

pytestmark = pytest.mark.timeout(180)


def settings_for(database_url: str, **over) -> Settings:
    return Settings(_env_file=None, database_url=database_url, http_port=0, status_line=False, collect_interval_s=1,
                    process_heartbeat_s=1, graph_render_processes=1, **over)


def service(settings: Settings, role: str = "run") -> Service:
    return Service(settings, console_input=False, console_out=io.StringIO(), role=role)  # type: ignore[arg-type]


async def test_a_worker_runs_the_pipeline_and_never_a_singleton(sqlite_url):
    worker = service(settings_for(sqlite_url), role="worker")
    ctx = await worker.start()
    try:
        assert ctx.scheduler is not None and ctx.supervisor is not None
        jobs, loops = set(ctx.scheduler.job_ids()), set(ctx.supervisor.loop_ids())
        assert {"pipeline.process", "pipeline.profiles"} <= jobs and "pipeline.discovery_ws" in loops
        assert jobs <= EVERY_PROCESS and loops <= EVERY_PROCESS, (jobs - EVERY_PROCESS, loops - EVERY_PROCESS)
        assert worker.gate is None and worker.bot is None and ctx.alerts is None
        assert worker.monitoring is not None and worker.monitoring.registry.store is None   # no store writes
        assert worker.processes is not None
        await worker.processes.heartbeat()
        assert [(p.role, p.this) for p in worker.processes.latest] == [("worker", True)]
    finally:
        await worker.stop()


@pytest.mark.parametrize("lock", ["redis", "postgres"])
async def test_one_leader_runs_the_singletons_the_standby_takes_over_when_it_stops(lock, pg_url, redis_client):
    settings = settings_for(pg_url, redis_url=REDIS_TEST_URL if lock == "redis" else None)
    a, b = service(settings), service(settings)
    await a.start()
    try:
        await b.start()
        try:
            assert a.gate is not None and b.gate is not None
            assert a.gate.role == "leader" and b.gate.role == "standby"
            for svc, leads in ((a, True), (b, False)):
                assert svc.ctx is not None and svc.ctx.scheduler is not None and svc.ctx.supervisor is not None
                jobs, loops = set(svc.ctx.scheduler.job_ids()), set(svc.ctx.supervisor.loop_ids())
                if leads:
                    assert SINGLETONS <= jobs and SINGLETON_LOOPS <= loops, (jobs, loops)
                else:
                    assert not (SINGLETONS & jobs) and not (SINGLETON_LOOPS & loops), (jobs, loops)
                assert {"pipeline.process", "monitoring.collect", "processes.heartbeat"} <= jobs
                assert svc.ctx.alerts is not None and svc.ctx.alerts.paused is not leads
                assert svc.monitoring is not None and (svc.monitoring.registry.store is not None) is leads

            # /status and /metrics of the leader show both processes and the whole
            assert a.processes is not None and b.processes is not None
            await b.processes.heartbeat()
            await a.processes.heartbeat()
            views = a.processes.latest
            assert sorted(v.role for v in views) == ["leader", "standby"]
            assert a.gate.leadership.kind == lock
            text = render_processes(views, a.clock.time(), kind=lock, lock_up=True)
            assert "2 processes up: 1 leader, 1 standby" in text and text.count("\n• ") == 2
            assert "(this one)" in text
            assert a.ctx is not None and a.ctx.collectors is not None
            await a.ctx.collectors.run_collection()
            up = {k: s.value for k, s in a.ctx.collectors.latest().items() if k[0] == m.PROCESS_UP}
            assert len(up) == 2 and set(up.values()) == {1.0}
            assert a.ctx.collectors.latest_value(m.LEADER) == 1.0
            assert b.ctx is not None and b.ctx.collectors is not None
            await b.ctx.collectors.run_collection()
            assert b.ctx.collectors.latest_value(m.LEADER) == 0.0

            await a.stop()                      # a clean stop releases the lease at once
            assert await b.gate.step()          # the standby's next step takes over
            assert b.ctx is not None and b.ctx.scheduler is not None and b.ctx.supervisor is not None
            assert SINGLETONS <= set(b.ctx.scheduler.job_ids())
            assert SINGLETON_LOOPS <= set(b.ctx.supervisor.loop_ids())
            assert b.ctx.alerts is not None and not b.ctx.alerts.paused
            assert b.monitoring is not None and b.monitoring.registry.store is not None
            await b.processes.heartbeat()
            assert [(p.role, p.this) for p in b.processes.latest] == [("leader", True)]   # a's row went with it
        finally:
            await b.stop()
    finally:
        await a.stop()
