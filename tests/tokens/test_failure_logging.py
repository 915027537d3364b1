"""During an outage the log says once that fetching fails and once that it recovered, with the
count, instead of a warning every cycle; the failures are counted for metrics."""
from __future__ import annotations

import logging

from app.clock import ManualClock
from tokens.failure_streak import FailureStreak
from tokens.ratelimit import RateLimiter


def _lines(caplog, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


async def test_an_outage_logs_one_warning_and_one_recovery(caplog, clock, market, make_pipeline) -> None:
    caplog.set_level(logging.DEBUG, logger="tokens")
    pipeline = await make_pipeline()
    pipeline.client.max_retries = 0
    for mint in market.model.seed_tokens(3):
        await pipeline.intake.add(mint, source="test")

    market.faults.set(outage=True)
    for _ in range(4):
        await pipeline.processor.run_once()
        clock.advance(600)  # every token is due again
    warnings = _lines(caplog, "tokens.processor", logging.WARNING)
    assert len(warnings) == 1 and "fetching failing" in warnings[0] and "http_503" in warnings[0]
    assert pipeline.counters.batch_failures == 4 and pipeline.counters.check_failures == 12

    market.faults.reset()
    await pipeline.processor.run_once()
    infos = [line for line in _lines(caplog, "tokens.processor", logging.INFO) if "recovered" in line]
    assert infos == ["fetching recovered after 4 failed batches over 2400s"]
    await pipeline.processor.run_once()
    assert len(_lines(caplog, "tokens.processor", logging.WARNING)) == 1


async def test_the_profiles_poller_logs_an_outage_once(caplog, clock, market, make_pipeline) -> None:
    caplog.set_level(logging.DEBUG, logger="tokens")
    pipeline = await make_pipeline()
    pipeline.client.max_retries = 0
    pipeline.client.profiles_limiter = RateLimiter(6000)
    market.model.seed_tokens(2)
    market.faults.set(outage=True)
    for _ in range(3):
        assert await pipeline.profiles.poll_once() == 0
        clock.advance(30)
    warnings = _lines(caplog, "tokens.discovery_profiles", logging.WARNING)
    assert len(warnings) == 1 and "token profiles failing" in warnings[0]

    market.faults.reset()
    assert await pipeline.profiles.poll_once() == 2  # nothing was lost while it failed
    assert _lines(caplog, "tokens.discovery_profiles", logging.INFO)[-1] == (
        "token profiles recovered after 3 failed polls over 90s")


def test_a_failure_streak_logs_its_start_and_end_only(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="t")
    clock = ManualClock()
    streak = FailureStreak(logging.getLogger("t"), "rate limiting (429)", unit="answers", clock=clock)
    assert streak.succeeded() is False  # nothing to recover from: silent
    assert streak.failed("429") is True
    for _ in range(5):
        clock.advance(1)
        assert streak.failed("429") is False
    assert streak.succeeded() is True
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING] + [logging.DEBUG] * 5 + [logging.INFO]
    assert caplog.records[-1].getMessage() == "rate limiting (429) recovered after 6 failed answers over 5s"
    assert streak.total_failures == 6 and not streak.failing


def test_a_failure_that_flips_on_and_off_is_reported_once_a_minute(caplog) -> None:
    """40% of answers throttled: fail, succeed, fail... one warning and one recovery per minute, not per flip."""
    caplog.set_level(logging.DEBUG, logger="t")
    clock = ManualClock()
    streak = FailureStreak(logging.getLogger("t"), "tokens_batch rate limiting (429)", unit="answers", clock=clock)
    for _ in range(30):                       # a flip every second for 30 s
        streak.failed("429")
        clock.advance(0.5)
        streak.succeeded()
        clock.advance(0.5)
    assert [r.levelno for r in caplog.records if r.levelno >= logging.INFO] == [logging.WARNING, logging.INFO]
    clock.advance(31)                         # a minute after the first report
    caplog.clear()
    assert streak.failed("429") is True
    assert streak.succeeded() is True
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == [
        "tokens_batch rate limiting (429) failing: 429 (repeats are counted, logged once it recovers; "
        "29 more streaks since the last report)",
        "tokens_batch rate limiting (429) recovered after 1 failed answers over 0s"]
    assert streak.total_failures == 31
