"""The heartbeat pings a dead-man's switch while the PIPELINE is healthy, a failure ping with the
reason while it is stalled, in both URL styles; its own failures are logged once and never raised.

A tiny aiohttp server plays Healthchecks.io and Uptime Kuma; the pipeline snapshot is the real
one (``monitoring.pipeline.snapshot.pipeline_snapshot``) over seeded tokens and checks."""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from alerts.heartbeat import Heartbeat, ping_request
from app.settings import Settings
from monitoring.pipeline.snapshot import pipeline_snapshot
from monitoring.snapshot import CollectorHealth, MonitoringSnapshot
from tokens.models import Check, Token
from tokens.check_rollup import rebuild_check_rollup


@dataclass
class Switch:
    """A local dead-man's switch that records every ping."""

    base: str = ""
    pings: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)  # method, path, query, body
    status: int = 200


@pytest.fixture
async def switch():
    rec = Switch()

    async def handle(request: web.Request) -> web.Response:
        rec.pings.append((request.method, request.path, dict(request.query), await request.text()))
        return web.Response(status=rec.status, text="OK")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.base = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        await runner.cleanup()


async def seed(db, now: float, *, last_success_ago: float) -> None:
    async with db.session() as s:
        token = Token(mint="HbMint" * 6, status="monitoring", status_since=now - 3600, discovered_at=now - 3600,
                      next_check_at=now + 10)
        s.add(token)
        await s.flush()
        s.add(Check(check_id="c1", token_id=token.id, at=now - last_success_ago, status_at_check="monitoring", ok=True))
        await rebuild_check_rollup(s)  # the per-minute counts monitoring reads
        await s.commit()


async def snapshot(db, now: float) -> MonitoringSnapshot:
    pipe = await pipeline_snapshot(db, now)
    return MonitoringSnapshot(at=now, cycle=1, rate_window_s=60.0, collect_interval_s=10.0, pipeline=pipe,
                              collectors={"pipeline": CollectorHealth("pipeline", ok=True)})


@pytest.mark.parametrize("style", ["healthchecks", "kuma"])
async def test_success_while_healthy_and_failure_with_the_reason_while_stalled(db, clock, switch, style):
    now = clock.time()
    await seed(db, now, last_success_ago=5.0)
    healthy = await snapshot(db, now)
    assert not healthy.stalled
    url = f"{switch.base}/ping/abc-123" if style == "healthchecks" else \
        f"{switch.base}/api/push/tok3n?status=up&msg=OK&ping="
    latest: list[MonitoringSnapshot | None] = [healthy]
    hb = Heartbeat(url, snapshot=lambda: latest[0], clock=clock, max_age_s=30.0)

    ok = await hb.ping_once()
    assert ok.sent and ok.ok and ok.healthy

    # ten minutes later no check has succeeded: the real pipeline snapshot says stalled
    clock.advance(600)
    stalled = await snapshot(db, clock.time())
    assert stalled.stalled
    latest[0] = stalled
    bad = await hb.ping_once()
    assert bad.sent and bad.ok and not bad.healthy and "pipeline stalled" in (bad.reason or "")

    (m1, p1, q1, b1), (m2, p2, q2, b2) = switch.pings
    if style == "healthchecks":
        assert (m1, p1, b1) == ("GET", "/ping/abc-123", "")
        assert (m2, p2) == ("POST", "/ping/abc-123/fail") and "pipeline stalled" in b2
    else:
        assert p1 == p2 == "/api/push/tok3n"
        assert q1 == {"status": "up", "msg": "OK"}           # the pasted empty ping= is dropped
        assert q2["status"] == "down" and q2["msg"].startswith("pipeline stalled")


async def test_a_stale_snapshot_is_a_failure_and_nothing_is_sent_while_starting(clock, switch):
    """The process lives but monitoring stopped publishing: that is not healthy."""
    latest: list[MonitoringSnapshot | None] = [None]
    hb = Heartbeat(f"{switch.base}/hc", snapshot=lambda: latest[0], clock=clock, max_age_s=30.0)
    first = await hb.ping_once()                   # just started, no collection yet: wait
    assert not first.sent and switch.pings == []
    clock.advance(31)
    none_yet = await hb.ping_once()
    assert none_yet.sent and not none_yet.healthy
    latest[0] = MonitoringSnapshot(at=clock.time(), cycle=1, rate_window_s=60.0, collect_interval_s=10.0)
    assert (await hb.ping_once()).healthy
    clock.advance(120)                              # the collection loop hung
    stale = await hb.ping_once()
    assert not stale.healthy and "last metrics collection 120s ago" in (stale.reason or "")
    assert [p[1] for p in switch.pings] == ["/hc/fail", "/hc", "/hc/fail"]


async def test_network_errors_are_logged_once_never_raised_and_recovery_is_logged(clock, switch, caplog):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    snap = MonitoringSnapshot(at=clock.time(), cycle=1, rate_window_s=60.0, collect_interval_s=10.0)
    hb = Heartbeat(f"http://127.0.0.1:{dead}/ping/secret-uuid", snapshot=lambda: snap, clock=clock, timeout_s=2.0)
    with caplog.at_level(logging.DEBUG, logger="alerts.heartbeat"):
        results = [await hb.ping_once() for _ in range(3)]
        assert all(r.sent and not r.ok and r.error for r in results)
        assert hb.failing and hb.failures == 3
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "secret-uuid" not in warnings[0].getMessage()
        # the switch comes back (same host, now listening): one INFO line
        hb.url = f"{switch.base}/ping/secret-uuid"
        assert (await hb.ping_once()).ok
        # an HTTP error is a failure too
        switch.status = 503
        assert not (await hb.ping_once()).ok
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("accepts pings again" in m for m in infos)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    assert not any("secret-uuid" in r.getMessage() for r in caplog.records)


def test_kuma_reason_is_url_encoded():
    method, url, body = ping_request("https://kuma.example/api/push/t", False, "a&b=c #1 ü")
    assert method == "GET" and body is None
    assert url.query["msg"] == "a&b=c #1 ü" and "&b=c" not in url.raw_query_string


def test_settings_check_the_url_and_the_digest_cron():
    from app.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="HEARTBEAT_URL"):
        load_settings(_env_file=None, heartbeat_url="hc-ping.com/abc")
    with pytest.raises(SettingsError, match="DIGEST_CRON"):
        load_settings(_env_file=None, digest_cron="every day")
    assert Settings(_env_file=None).heartbeat_url is None
