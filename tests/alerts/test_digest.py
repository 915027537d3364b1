"""The digest: its numbers on seeded data (SQLite and PostgreSQL), valid Telegram HTML with hostile
rule names, the chart of the day as a photo captioned with the numbers, and one digest per period
across restarts. Through the real outbox, the real sender and the fake Bot API server."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from alerts.digest import Digest, DigestFigures, last_fire_time
from alerts.history import alert_stats
from alerts.models import AlertEvent, AlertIncident
from charts.digest_chart import DigestChart
from charts.worker import RenderWorker
from delivery.store import Outbox
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.store import MetricStore
from simulator.telegram_html import check_message, visible_text
from tests.alerts.conftest import ALERT_CHAT
from tokens.models import Check, Token, Transition
from tokens.check_rollup import rebuild_check_rollup

H = 3600.0
DAY1_0900 = datetime(2024, 3, 5, 9, 0, tzinfo=timezone.utc).timestamp()
EVIL = "<evil & rule>"


async def seed(db, now: float) -> None:
    """Inside the last 24 h: 4 discoveries, 2 activations (after 1 min and 10 min in monitoring) and
    2 archivings, 10 ok and 3 failed checks; 6 alerts fired (memory_high 3, api_slow 2, EVIL 1),
    2 acknowledged (after 2 min and 5 min), 4 resolved, 1 escalation, 3 incidents opened.
    Outside it (25-30 h ago): one of each, which must not count."""
    async with db.session() as s:
        tokens = [Token(mint=f"DigestMint{i:02d}" * 3, status="monitoring", status_since=now - 30 * H,
                        discovered_at=now - 30 * H) for i in range(5)]
        s.add_all(tokens)
        await s.flush()
        t = [tok.id for tok in tokens]
        moves = [Transition(token_id=t[i], from_status=None, to_status="monitoring", at=now - (i + 1) * H,
                            reason="discovered") for i in range(4)]
        moves += [
            Transition(token_id=t[0], from_status="monitoring", to_status="active", at=now - 0.5 * H, reason="ok",
                       time_in_previous_s=60.0),
            Transition(token_id=t[1], from_status="monitoring", to_status="active", at=now - 1.5 * H, reason="ok",
                       time_in_previous_s=600.0),
            Transition(token_id=t[2], from_status="monitoring", to_status="archived", at=now - 2.5 * H,
                       reason="timeout", time_in_previous_s=9000.0),
            Transition(token_id=t[3], from_status="monitoring", to_status="archived", at=now - 3.5 * H,
                       reason="low_score", time_in_previous_s=4000.0),
            # outside the window
            Transition(token_id=t[4], from_status=None, to_status="monitoring", at=now - 30 * H, reason="discovered"),
            Transition(token_id=t[4], from_status="monitoring", to_status="active", at=now - 26 * H, reason="ok",
                       time_in_previous_s=5.0),
        ]
        s.add_all(moves)
        checks = [Check(check_id=f"ok{i}", token_id=t[i % 4], at=now - i * 600 - 1, status_at_check="monitoring",
                        ok=True) for i in range(10)]
        checks += [Check(check_id=f"bad{i}", token_id=t[0], at=now - i * 900 - 2, status_at_check="monitoring",
                         ok=False, error="timeout") for i in range(3)]
        checks += [Check(check_id="old", token_id=t[0], at=now - 25 * H, status_at_check="monitoring", ok=True)]
        s.add_all(checks)
        fired = ["memory_high"] * 3 + ["api_slow"] * 2 + [EVIL]
        events = [AlertEvent(at=now - (i + 1) * 1000, kind="fired", rule=rule) for i, rule in enumerate(fired)]
        events += [AlertEvent(at=now - 5000 + 120, kind="ack", rule="memory_high", actor="Ann"),
                   AlertEvent(at=now - 3000 + 300, kind="ack", rule="api_slow", actor="Bob")]
        events += [AlertEvent(at=now - 100 * (i + 1), kind="resolved", rule="memory_high") for i in range(4)]
        events += [AlertEvent(at=now - 400, kind="escalated", rule=EVIL),
                   AlertEvent(at=now - 26 * H, kind="fired", rule="api_slow")]  # outside
        s.add_all(events)
        s.add_all([
            AlertIncident(group_key="a", title="Memory high", opened_at=now - 5000, acked_at=now - 5000 + 120),
            AlertIncident(group_key="b", title="API slow", opened_at=now - 3000, acked_at=now - 3000 + 300),
            AlertIncident(group_key="c", title=EVIL, opened_at=now - 400),
            AlertIncident(group_key="d", title="old", opened_at=now - 27 * H, acked_at=now - 26.9 * H),
        ])
        await rebuild_check_rollup(s)  # the per-minute counts apply_checks writes with each batch
        await s.commit()


async def test_digest_numbers_on_seeded_data(db, clock):
    clock.set(DAY1_0900)
    await seed(db, clock.time())
    digest = Digest(db, None, clock)
    f: DigestFigures = await digest.figures(hours=24)
    assert (f.checks_ok, f.checks_failed, f.checks, f.discovered) == (10, 3, 13, 4)
    assert (f.activation.activated, f.activation.left_monitoring) == (2, 4)
    assert (f.time_to_activation.p50, f.time_to_activation.p95) == (60.0, 600.0)
    s = f.alerts
    assert (s.fired, s.acknowledged, s.resolved, s.escalated, s.opened) == (6, 2, 4, 1, 3)
    assert s.mean_time_to_ack_s == pytest.approx(210.0)
    assert s.noisiest == [("memory_high", 3), ("api_slow", 2), (EVIL, 1)]

    view = await digest.build(hours=24)
    assert view.chart is None and view.until - view.since == 24 * H
    assert check_message(view.text, "HTML", caption=True) is None     # Telegram would take it as a caption
    text = visible_text(view.text, "HTML")
    for line in ("Checks: 13 (10 ok, 3 failed, 23.1% failed)", "Tokens discovered: 4",
                 "Activations: 2 of 4 that left monitoring (50.0% success)",
                 "Time to activation: p50 1m 00s · p95 10m 00s",
                 "Fired 6 · acknowledged 2 · resolved 4 · incidents opened 3",
                 "Mean time to acknowledge: 3m 30s", f"Noisiest: memory_high ×3, api_slow ×2, {EVIL} ×1"):
        assert line in text


async def test_an_empty_day_says_so(db, clock):
    view = await Digest(db, None, clock).build(hours=24)
    text = visible_text(view.text, "HTML")
    assert "Checks: none" in text and "No alerts fired." in text
    assert (await alert_stats_session(db, clock.time())).mean_time_to_ack_s is None


async def alert_stats_session(db, now: float):
    return await db.run(lambda s: alert_stats(s, now - 24 * H, now))


def test_the_period_is_the_crons_last_fire_time():
    at = datetime(2024, 3, 5, 10, 30, tzinfo=timezone.utc).timestamp()
    assert last_fire_time("0 9 * * *", at) == DAY1_0900
    assert last_fire_time("0 9 * * *", DAY1_0900 - 1) == DAY1_0900 - 24 * H
    assert last_fire_time("*/15 * * * *", at) == at
    assert last_fire_time("0 9 * * mon", at) == DAY1_0900 - 24 * H   # 5 March 2024 is a Tuesday


def store_history(now: float) -> list[Sample]:
    out = []
    for i in range(0, 24 * 60, 10):  # a point every 10 minutes over the day
        ts = now - 24 * H + i * 60 + 1
        out += [Sample(m.CHECK_OUTCOMES_PER_MINUTE, 80.0 + i % 7, {"outcome": "ok"}, ts=ts),
                Sample(m.CHECK_OUTCOMES_PER_MINUTE, float(i % 3), {"outcome": "failed"}, ts=ts),
                Sample(m.TRANSITIONS_PER_MINUTE, 2.0, {"from": "none", "to": "monitoring"}, ts=ts),
                Sample(m.TRANSITIONS_PER_MINUTE, 0.4, {"from": "monitoring", "to": "active"}, ts=ts),
                Sample(m.ACTIVATION_SUCCESS_RATE, 0.5, ts=ts)]
    return out


async def test_scheduled_digest_is_a_photo_sent_once_per_day_across_restarts(db, clock, delivery):
    clock.set(DAY1_0900 + 5)
    await seed(db, clock.time())
    store = MetricStore(db, clock, raw_retention_h=6, minute_retention_d=2)
    await store.write(store_history(clock.time()))
    await store.rollup(clock.time())
    worker = RenderWorker(mode="thread")
    chart = DigestChart(store, worker)
    await delivery.start()
    outbox = Outbox(db, clock)     # rows stamped on the test's clock (the sender delivers on the real one)
    try:
        # a first start just after 09:00: nothing was ever sent, so no digest was missed
        assert not await Digest(db, outbox, clock, alert_chat_id=ALERT_CHAT).catch_up()
        first = Digest(db, outbox, clock, chart=chart, alert_chat_id=ALERT_CHAT)
        assert [j.schedule for j in first.jobs()] == ["cron 0 9 * * * (UTC)"]
        assert await first.send_scheduled()
        msg = await delivery.fake.wait_for(lambda: (delivery.fake.sent(ALERT_CHAT) or [None])[0], timeout=20)
        assert msg.photo is not None and msg.photo[:8] == b"\x89PNG\r\n\x1a\n"
        assert "Checks: 13 (10 ok, 3 failed" in msg.plain and msg.caption is not None
        assert {"ok", "failed", "discovered", "activated", "tokens activated"} <= set(chart.last_series)

        # a restart ten minutes later: the catch-up and a repeated job run queue nothing
        clock.advance(600)
        restarted = Digest(db, outbox, clock, chart=chart, alert_chat_id=ALERT_CHAT)
        assert not await restarted.catch_up()
        assert not await restarted.send_scheduled()
        # the next day's run sends the next one
        clock.set(DAY1_0900 + 24 * H + 2)
        assert await restarted.send_scheduled()
        await delivery.fake.wait_for(lambda: len(delivery.fake.sent(ALERT_CHAT)) == 2, timeout=20)
        # down over the third day's 09:00, back at 10:00: the missed digest goes out once
        clock.set(DAY1_0900 + 49 * H)
        late = Digest(db, outbox, clock, alert_chat_id=ALERT_CHAT)
        assert await late.catch_up() and not await late.catch_up()
        # back only at 20:00 on the fourth day: too late for that day's digest
        clock.set(DAY1_0900 + 3 * 24 * H + 11 * H)
        assert not await Digest(db, outbox, clock, alert_chat_id=ALERT_CHAT).catch_up()
        await delivery.fake.wait_for(lambda: len(delivery.fake.sent(ALERT_CHAT)) == 3, timeout=20)
        await asyncio.sleep(0.3)
        sent = delivery.fake.sent(ALERT_CHAT)
        assert len(sent) == 3 and sent[2].photo is None and "Digest" in sent[2].plain
    finally:
        await worker.stop()


async def test_send_now_once_per_key_and_a_failing_chart_leaves_the_numbers(db, clock, delivery):
    async def broken_chart(since: float, until: float) -> bytes | None:
        raise RuntimeError("matplotlib exploded")

    digest = Digest(db, delivery.outbox, clock, chart=broken_chart, alert_chat_id=ALERT_CHAT)
    await delivery.start()
    first = await digest.send_now(ALERT_CHAT, "digest:cmd:1")
    again = await digest.send_now(ALERT_CHAT, "digest:cmd:1")
    assert first.ok and first.changed and again.ok and not again.changed
    msg = await delivery.fake.wait_for(lambda: (delivery.fake.sent(ALERT_CHAT) or [None])[0], timeout=10)
    assert msg.photo is None and "Digest" in msg.plain
    none = Digest(db, None, clock)
    refused = await none.send_now(ALERT_CHAT, "digest:cmd:2")
    assert not refused.ok and "not running" in refused.text
