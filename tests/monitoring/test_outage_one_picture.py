"""The operator's outage, replayed: the local market goes down (through its admin API) while the
real processor keeps checking tokens that only have a pump.fun pool (``no_external_pool``).

Before the snapshot, /status said "STALLED" beside "Checks/min: 303 ok" and blamed
``no_external_pool`` as "a market condition", the status line kept a healthy checks/min and
/readyz stayed ready. Now /status (through the real bot), the status line, /readyz and /metrics
(parsed with prometheus_client's own parser) read the same snapshot and all say: stalled, 0 ok
checks per minute, no blame on the tokens, not ready. The clock only moves when told to.
"""
from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_dispatcher
from bot.runner import BotRunner
from bot.setup import build_status_sections
from monitoring import metric_names as m
from monitoring.http import HttpServer
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import VIEWER, say
from tests.monitoring.market_helpers import market_and_client, track
from tests.tokens.conftest import eventually
from tokens.processor import Processor
from tokenwatch.status_line import status_text

STEP_S = 10.0


async def _run(ctx, processor: Processor, seconds: float) -> None:
    """``seconds`` of service life in 10 s steps: the due tokens are checked, then one collection."""
    for _ in range(int(seconds // STEP_S)):
        ctx.clock.advance(STEP_S)
        await processor.run_once()
        # a batch still out when the run's budget ended writes in the background (a loaded machine)
        await eventually(lambda: processor.batches_in_flight == 0, timeout_s=20)
        await ctx.collectors.run_collection()


def _metrics(body: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


async def test_a_market_outage_reads_the_same_on_status_status_line_readyz_and_metrics(fake, frame_ctx):
    ctx = frame_ctx
    async with market_and_client(ctx.clock) as (market, client):
        processor = Processor(ctx.db, client, ctx.settings, ctx.clock)
        for _ in range(5):  # tokens with only a pump.fun pool: every good check fails on no_external_pool
            mint = market.model.new_mint()
            market.model.set_pairs(mint, [market.model.make_pair(mint, "pumpswap", "SOL", 5000)])
            await track(ctx.db, mint, ctx.clock.time())
        server = HttpServer(registry=ctx.collectors, db=ctx.db, port=0, clock=ctx.clock)
        await server.start()
        try:
            dispatcher = build_dispatcher(ctx, status_sections=build_status_sections())  # as the service
            runner = BotRunner(ctx, dispatcher=dispatcher, polling_timeout=1)
            await runner.start()
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                    await _run(ctx, processor, 120)  # two healthy minutes
                    healthy = ctx.collectors.coordinator.latest
                    assert healthy.pipeline.check_rates.ok > 0 and not healthy.stalled
                    async with http.get(f"{server.url}/readyz") as resp:
                        assert resp.status == 200

                    async with http.post(f"{market.admin_url}/faults",
                                         json={"outage": True, "outage_mode": "503"}) as resp:
                        assert resp.status == 200
                    # 150 s of outage: past the stall threshold (3 x the 45 s cold interval = 135 s;
                    # the tokens left the 120 s "fresh" hot band) and past the 60 s rate window
                    await _run(ctx, processor, 150)

                    snap = ctx.collectors.coordinator.latest
                    assert snap.stalled and snap.pipeline.stall.stage == "fetch"
                    assert snap.pipeline.check_rates.ok == 0.0 and snap.pipeline.check_rates.failed > 0

                    # /status through the real bot: the snapshot just collected (at most one interval old)
                    text = (await say(fake, VIEWER, VIEWER, "/status")).plain
                    assert "🔴 STALLED: no successful check for" in text and "stopped at fetch" in text
                    assert "Checks/min (last 1 min): 0.0 ok," in text
                    assert "fetches are failing now" in text
                    assert "a market condition" not in text and "most failures" not in text
                    assert "as of " in text and "0s ago" in text

                    # the terminal's status line
                    line = await status_text(ctx)
                    assert "checks/min(last 1 min)=0.0 ok," in line and "| STALLED at fetch" in line

                    # /readyz: not ready, and says why
                    async with http.get(f"{server.url}/readyz") as resp:
                        assert resp.status == 503
                        body = await resp.json()
                    assert body["ready"] is False and body["reason"].startswith("pipeline stalled")
                    assert "every fetch failing" in body["reason"]

                    # /metrics, read by Prometheus' own parser
                    async with http.get(f"{server.url}/metrics") as resp:
                        metrics = _metrics(await resp.text())
                    assert metrics[(m.PIPELINE_STALLED, ())] == 1.0
                    assert metrics[(m.CHECK_OUTCOMES_PER_MINUTE, (("outcome", "ok"),))] == 0.0
                    assert metrics[(m.CHECK_OUTCOMES_PER_MINUTE, (("outcome", "failed"),))] > 0
                    assert metrics[(m.RATE_WINDOW_SECONDS, ())] == 60.0

                    # the market comes back: one more minute of checks and every reader is healthy again
                    async with http.post(f"{market.admin_url}/faults/reset") as resp:
                        assert resp.status == 200
                    await _run(ctx, processor, 60)
                    assert not ctx.collectors.coordinator.latest.stalled
                    assert "STALLED" not in await status_text(ctx)
                    async with http.get(f"{server.url}/readyz") as resp:
                        assert resp.status == 200
            finally:
                await runner.stop()
        finally:
            await server.stop()
            await processor.close()
