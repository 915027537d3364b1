"""Smaller parts: API statistics, stage statistics, the jobs, junk on the websocket, lost inserts."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tokens import queries
from tokens.api_stats import ApiStats
from tokens.discovery_ws import MigrationListener
from tokens.intake import TokenIntake
from tokens.pipeline import Pipeline
from tokens.stage_stats import STAGES, StageStats
from tests.tokens.conftest import TEST_RUN_BUDGET_S, pipeline_settings

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def test_api_stats_percentiles_and_error_rate() -> None:
    stats = ApiStats()
    for i in range(1, 101):
        stats.record("tokens_batch", latency_s=i / 1000, status=200)
    stats.record("tokens_batch", latency_s=0.5, status=429)
    stats.record("tokens_batch", timeout=True)
    stats.record("token_pairs", latency_s=0.01, status=503)
    snap = stats.snapshot()
    batch = snap["tokens_batch"]
    assert batch.requests == 102 and batch.rate_limited == 1 and batch.timeouts == 1 and batch.errors == 2
    assert batch.p50_s == pytest.approx(0.051, abs=0.002) and batch.p99_s >= 0.099
    assert batch.error_rate == pytest.approx(2 / 102)
    assert snap["token_pairs"].last_error == "HTTP 503"
    assert snap["token_profiles"].requests == 0 and snap["token_profiles"].p95_s is None


def test_stage_stats_name_every_stage(clock) -> None:
    stages = StageStats(clock)
    with stages.time("fetch", items=30):
        pass
    stages.set_queue("scheduler", 120)
    snap = stages.snapshot()
    assert set(snap) == set(STAGES)
    assert snap["fetch"].count == 30 and snap["fetch"].last_at == clock.time()
    assert snap["scheduler"].queue_size == 120 and snap["db_write"].last_at is None


async def test_jobs_have_stable_ids_and_run(sqlite_db, clock, market) -> None:
    settings = pipeline_settings(process_interval_s=2.0, profiles_poll_interval_s=15.0)
    async with Pipeline(settings, sqlite_db, clock, market.dexscreener_base_url, listen=False,
                        run_budget_s=TEST_RUN_BUDGET_S) as pipeline:
        jobs = {j.id: j for j in pipeline.jobs()}
        assert list(jobs) == ["pipeline.process", "pipeline.profiles", "pipeline.archive", "pipeline.retention"]
        assert jobs["pipeline.process"].interval_s == 2.0 and jobs["pipeline.profiles"].interval_s == 15.0
        market.model.seed_tokens(3)
        for job in jobs.values():
            await job.func()
        assert pipeline.counters.discovered == 3


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=st.one_of(st.text(max_size=80), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                       st.dictionaries(st.sampled_from(["mint", "name", "symbol", "message", "errors", "txType"]),
                                       st.one_of(st.none(), st.integers(), st.text(max_size=50)),
                                       max_size=4).map(json.dumps)))
async def test_any_frame_is_handled_without_crashing(frame, sqlite_db, clock) -> None:
    listener = MigrationListener("ws://unused", None, TokenIntake(sqlite_db, clock))  # type: ignore[arg-type]
    await listener.handle_text(frame)
    c = listener.counters
    assert listener.messages == 1
    assert c.garbage + c.discovered + c.duplicates + listener.confirmations + listener.server_errors <= 1


class FlakyIntake(TokenIntake):
    """Fails the first insert like a database outage would."""

    failures = 1

    async def add(self, mint, **kwargs):  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database is down")
        return await super().add(mint, **kwargs)


async def test_an_event_whose_insert_failed_is_kept_and_stored_later(sqlite_db, clock) -> None:
    listener = MigrationListener("ws://unused", None, FlakyIntake(sqlite_db, clock))  # type: ignore[arg-type]
    await listener.handle_text(json.dumps({"mint": MINT, "txType": "migrate"}))
    assert len(listener.pending) == 1 and listener.insert_errors == 1
    assert await listener.flush_pending() == 1
    assert await sqlite_db.run(lambda s: queries.get_token(s, MINT)) is not None
