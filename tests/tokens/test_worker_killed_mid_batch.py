"""A worker killed in the middle of a batch (SIGKILL while its tokens are leased): once the lease
ends another process checks them, each exactly once, and each makes its transition exactly once.

Real parts: PostgreSQL, the local market (in this process), the worker as a subprocess running
the pipeline (tests/tokens/pipeline_worker.py), and a second pipeline here as the other process.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from app.clock import SYSTEM_CLOCK
from app.db import Database, make_engine
from app.settings import Settings
from simulator.server import LocalMarket
from tokens.models import Check, Token, Transition
from tokens.pipeline import Pipeline
from tokens.repository import insert_token
from tokens.sql import execute

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 4.0  # CHECK_LEASE_S, shortened so the test waits seconds, not minutes
TOKENS = 12
DEADLINE_S = 60.0  # generous: a loaded machine starts a Python process slowly
ACTIVATING = [{"dex_id": "pumpswap", "quote": "SOL", "liquidity_usd": 1000},
              {"dex_id": "raydium", "quote": "USDC", "liquidity_usd": 500}]


async def wait_for(predicate, what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_killed_workers_tokens_are_checked_once_after_their_lease(pg_url) -> None:
    async with LocalMarket(seed=3, autostart_flow=False, rate_limit_per_min=30_000) as market:
        mints = [f"Kill{i:02d}pump" for i in range(TOKENS)]
        for mint in mints:
            market.model.add_token(mint, pairs=ACTIVATING)
        db = Database(make_engine(pg_url), retry_base_s=0.01)
        now = SYSTEM_CLOCK.time()

        async def seed(s):
            for mint in mints:
                await insert_token(s, mint, now=now, source="test")
        await db.run(seed)
        await market.apply_faults({"hang_rate": 1.0})  # the worker's batch request is never answered

        worker = subprocess.Popen([sys.executable, "-m", "tests.tokens.pipeline_worker", pg_url,
                                   market.dexscreener_base_url, str(LEASE_S)],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        other: Pipeline | None = None
        try:
            async def batch_in_flight() -> bool:
                assert worker.poll() is None, "the worker died by itself"
                return market.stats.in_flight >= 1

            await wait_for(batch_in_flight, "the worker's batch to reach the market")

            async def leased_until(s) -> float:
                return float((await execute(s, select(func.min(Token.next_check_at)))).scalar_one())
            lease_end = await db.run(leased_until)
            assert lease_end > SYSTEM_CLOCK.time()  # every token is leased to the worker
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            await market.reset_faults()

            settings = Settings(_env_file=None, database_url=pg_url, check_lease_s=LEASE_S,
                                api_rate_limit_per_min=30_000, batch_size=30)
            other = Pipeline(settings, db, SYSTEM_CLOCK, market.dexscreener_base_url, listen=False)
            await other.start()
            assert other.processor is not None
            if SYSTEM_CLOCK.time() < lease_end - 0.5:
                assert await other.processor.run_once() == 0  # still leased: nobody takes them yet

            async def all_checked() -> bool:
                assert other is not None and other.processor is not None
                await other.processor.run_once()
                checked = await db.run(lambda s: _scalar(s, select(func.count(func.distinct(Check.token_id)))))
                return int(checked) == TOKENS

            await wait_for(all_checked, "the other process to check the killed worker's tokens")
            assert SYSTEM_CLOCK.time() >= lease_end  # not before their lease ended

            async def history(s):
                checks = (await execute(s, select(Check.token_id, func.count()).group_by(Check.token_id))).all()
                moves = (await execute(s, select(Transition.token_id, Transition.to_status, func.count())
                                       .where(Transition.reason != "discovered")
                                       .group_by(Transition.token_id, Transition.to_status))).all()
                return checks, moves
            checks, moves = await db.run(history)
            assert sorted(n for _, n in checks) == [1] * TOKENS  # each checked exactly once
            assert len(moves) == TOKENS and all(to == "active" and n == 1 for _, to, n in moves)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=30)
            if other is not None:
                await other.stop()
            await db.dispose()


async def _scalar(s, stmt):
    return (await execute(s, stmt)).scalar_one()
