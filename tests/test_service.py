"""The whole service on the embedded default (SQLite, local market in-process, console chat):
tokens are discovered, checked and activated with transitions recorded; the console chat and
/metrics answer; a restart resumes from the database without duplicates, and an operator's
/tune change with it."""
from __future__ import annotations

import asyncio
import io
import re

import aiohttp
from sqlalchemy import func
from sqlmodel import select

from tokenwatch.service import Service
from app.settings import Settings
from tokens.models import ACTIVE, Check, Token, Transition


def fast_settings(db_path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{db_path}", http_port=0, status_line=False,
        sim_migration_interval_s=0.3, hot_check_interval_s=1, cold_check_interval_s=2,
        collect_interval_s=1, process_interval_s=0.5,
    )


async def _count(db, stmt) -> int:
    async with db.session() as session:
        return int((await session.exec(stmt)).one())


async def _counts_in_one_snapshot(db, *counts) -> tuple[int, ...]:
    """Several counts read by ONE statement, so they describe one moment of the database while the
    service keeps discovering (read one by one, they once saw 74 tokens and then 75 discoveries)."""
    async with db.session() as session:
        row = (await session.exec(select(*(c.scalar_subquery() for c in counts)))).one()
    return tuple(int(value) for value in row)


async def _wait_for(predicate, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await predicate():
        assert loop.time() < end, "the service did not get there in time"
        await asyncio.sleep(0.25)


async def test_service_discovers_checks_activates_and_resumes(tmp_path, caplog):
    settings = fast_settings(tmp_path / "tw.db")
    out = io.StringIO()
    service = Service(settings, console_input=False, console_out=out)
    ctx = await service.start()
    db = ctx.db
    try:
        async def activated() -> bool:
            return await _count(db, select(func.count()).select_from(Token).where(Token.status == ACTIVE)) >= 1

        await _wait_for(activated, timeout=60)
        assert await _count(db, select(func.count()).select_from(Check)) > 0
        async with db.session() as session:
            reasons = set((await session.exec(select(Transition.reason).distinct())).all())
        assert {"discovered", "activated"} <= reasons

        # the console chat (no terminal here, so it logs what it would send) answers /status
        # /status shows the latest snapshot (at most one collection interval old): collect once now
        # so the snapshot holds the activation waited for above
        await ctx.collectors.run_collection()
        caplog.clear()
        with caplog.at_level("INFO", logger="bot.console"):
            await service.bot.runner.console.handle_line("/status")
        shown = "\n".join(r.getMessage() for r in caplog.records if r.name == "bot.console")
        # the token counts, with at least the one activation waited for above
        assert re.search(r"^Tokens: monitoring \d+ · active [1-9]\d* · archived \d+$", shown, re.MULTILINE), shown

        # /metrics is served with the pipeline's numbers once a collection ran
        async def collected() -> bool:
            return ctx.collectors.last_collection_at is not None

        await _wait_for(collected, timeout=15)
        port = service.monitoring.http.port
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                body = await resp.text()
        assert resp.status == 200 and "tokenwatch_tokens" in body
        assert "tokenwatch_outbox_pending" in body and "tokenwatch_process_resident_bytes" in body
        # the market's circuit breakers are shown (closed), and recovery's RFC 6298 timer has taken the
        # batch timeout from API_TIMEOUT_S to what the answers measured, within RTO_MIN_S..RTO_MAX_S
        assert 'tokenwatch_circuit_state{endpoint="tokens_batch"} 0.0' in body
        batch_timeout = ctx.knobs.value("timeout:tokens_batch")
        assert settings.rto_min_s <= batch_timeout <= settings.rto_max_s and batch_timeout != settings.api_timeout_s
        assert 'tokenwatch_api_timeout_seconds{endpoint="tokens_batch"}' in body

        # an operator's change from the chat (the console chat is the admin's)
        caplog.clear()
        with caplog.at_level("INFO", logger="bot.console"):
            await service.bot.runner.console.handle_line("/tune batch_size 12")
        shown = "\n".join(r.getMessage() for r in caplog.records if r.name == "bot.console")
        assert "batch_size 30 → 12, pinned by" in shown, shown
        assert ctx.pipeline.processor.batch_size() == 12
    finally:
        await service.stop()

    # restart on the same database: resumes, no duplicate tokens or discovery transitions
    service2 = Service(settings, console_input=False, console_out=io.StringIO())
    ctx2 = await service2.start()
    try:
        db2 = ctx2.db
        before = await _count(db2, select(func.count()).select_from(Token))
        checks_before = await _count(db2, select(func.count()).select_from(Check))

        async def resumed() -> bool:
            return await _count(db2, select(func.count()).select_from(Check)) > checks_before

        await _wait_for(resumed, timeout=30)
        tokens, distinct_mints, discovered = await _counts_in_one_snapshot(
            db2,
            select(func.count()).select_from(Token),
            select(func.count(func.distinct(Token.mint))).select_from(Token),
            select(func.count()).select_from(Transition).where(Transition.reason == "discovered"),
        )
        # a token and its "discovered" transition are written in one transaction
        # (tokens.repository.insert_token), so in one snapshot they match exactly
        assert tokens >= before
        assert tokens == distinct_mints == discovered
        # the operator's pin came back with the restart, before any controller could move it
        assert ctx2.pipeline.processor.batch_size() == 12 and ctx2.knobs.pinned("batch_size") is not None
    finally:
        await service2.stop()
