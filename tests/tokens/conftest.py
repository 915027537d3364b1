"""Fixtures for the token pipeline: the local market over loopback and pipelines on it."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.settings import Settings
from app.supervisor import Supervisor
from simulator.server import LocalMarket
from tokens.pipeline import Pipeline


def pipeline_settings(**overrides) -> Settings:
    base = dict(_env_file=None, api_rate_limit_per_min=6000, api_timeout_s=2.0, ws_reconnect_min_s=0.05,
                ws_reconnect_max_s=0.2)
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
async def market(clock):
    """A local market on the test's ManualClock, no background migrations."""
    async with LocalMarket(seed=7, autostart_flow=False, clock=clock, rate_limit_per_min=6000) as m:
        yield m


# Tests drive ``run_once`` by hand on a ManualClock and read the database right after it, so a
# run must finish its batches: its budget is real time (the service's is under a second), and on a
# loaded machine a batch can outlive a short budget and finish in the background after the test
# has already looked. Tests of the deadline itself set a short budget explicitly.
TEST_RUN_BUDGET_S = 60.0


@pytest.fixture
async def make_pipeline(db, clock, market):
    """Build started pipelines on the test DB and the market, their loops (the websocket listener
    when ``listen``) under a supervisor as the service runs them; all stopped at teardown.
    ``Pipeline.stop()`` stops the pipeline's loops first."""
    made: list[tuple[Pipeline, Supervisor]] = []

    async def make(listen: bool = False, run_budget_s: float = TEST_RUN_BUDGET_S, **overrides) -> Pipeline:
        p = Pipeline(pipeline_settings(**overrides), db, clock, market.dexscreener_base_url,
                     market.pumpportal_ws_url, listen=listen, run_budget_s=run_budget_s)
        await p.start()
        supervisor = Supervisor(clock)
        supervisor.add_all(p.loops())
        await supervisor.start()
        stop_pipeline = p.stop

        async def stop() -> None:
            await supervisor.stop()
            await stop_pipeline()

        p.stop = stop  # type: ignore[method-assign]
        made.append((p, supervisor))
        return p

    yield make
    for p, _ in made:
        await p.stop()


async def eventually(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Wait until ``predicate()`` is true (async predicates allowed); fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
