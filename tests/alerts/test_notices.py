"""The started notice names the version, the database and what was resumed; the stopping notice is
delivered before the outbox sender stops. Through the real outbox, the real sender and the fake Bot
API server (which refuses invalid Telegram HTML).

The engine and quiet services are not in this branch: small implementations of their protocols
(``alerts.api.IncidentService`` / ``QuietService``) stand in, returning the views they return."""
from __future__ import annotations

import asyncio

from alerts.api import IncidentView, MaintenanceView, SilenceView
from alerts.notices import Notices
from app.build_info import version
from delivery.models import PENDING, SENT
from tests.alerts.conftest import ALERT_CHAT

HOSTILE = "<b>Rug & pull</b> \"quoted\""


def incident(i: int, title: str, severity: str = "critical", status: str = "open") -> IncidentView:
    return IncidentView(id=i, title=title, group="g", severity=severity, status=status, opened_at=0.0,
                        resolved_at=None, acked_by=None, acked_at=None, ack_until=None, escalation_level=0,
                        next_escalation_at=None, flapping=False, muted_reason=None)


class Incidents:
    def __init__(self, items: list[IncidentView], fail: bool = False) -> None:
        self.items, self.fail = items, fail

    async def open_incidents(self) -> list[IncidentView]:
        if self.fail:
            raise RuntimeError("database is down")
        return self.items


class Quiet:
    def __init__(self, silences: list[SilenceView], window: MaintenanceView | None) -> None:
        self._silences, self.window = silences, window

    async def silences(self) -> list[SilenceView]:
        return self._silences

    async def maintenance(self) -> MaintenanceView | None:
        return self.window


async def test_started_notice_lists_what_was_resumed(db, clock, delivery):
    now = clock.time()
    incidents = Incidents([incident(7, HOSTILE), incident(8, "API slow", "warning", "acknowledged")])
    quiet = Quiet([SilenceView(3, "rule=api_slow endpoint=<x>", "noisy", "Ann", now - 60, now + 3600)],
                  MaintenanceView(1, now - 600, now + 1800, "db <upgrade>", "Ann", 4))
    notices = Notices(delivery.outbox, ALERT_CHAT, clock, started_at=now, database="postgresql",
                      market="sim", incidents=incidents, quiet=quiet)  # type: ignore[arg-type]
    await delivery.start()
    assert await notices.started()
    msg = await delivery.fake.wait_for(lambda: (delivery.fake.sent(ALERT_CHAT) or [None])[0], timeout=10)
    text = msg.plain
    assert "tokenwatch started" in text and version() in text and "database postgresql" in text
    assert "2 open incidents" in text and f"#7 {HOSTILE}" in text and "#8 API slow (warning, acknowledged)" in text
    assert "1 active silence: rule=api_slow endpoint=<x>" in text
    assert "maintenance on until" in text and "30m" in text and "db <upgrade>" in text

    # the same start again (a retried start, a second call) says nothing new
    assert not await notices.started()
    await asyncio.sleep(0.3)
    assert len(delivery.fake.sent(ALERT_CHAT)) == 1


async def test_started_notice_with_nothing_open_or_a_failing_service(db, clock, delivery):
    await delivery.start()
    calm = Notices(delivery.outbox, ALERT_CHAT, clock, started_at=clock.time(), database="sqlite",
                   incidents=Incidents([]), quiet=Quiet([], None))  # type: ignore[arg-type]
    assert await calm.started()
    clock.advance(120)  # the next start, two minutes later
    broken = Notices(delivery.outbox, ALERT_CHAT, clock, started_at=clock.time(), database="sqlite",
                     incidents=Incidents([], fail=True), quiet=None)  # type: ignore[arg-type]
    assert await broken.started()
    sent = await delivery.fake.wait_for(lambda: len(delivery.fake.sent(ALERT_CHAT)) == 2 and delivery.fake.sent(ALERT_CHAT),
                                        timeout=10)
    assert "Resumed: nothing open" in sent[0].plain
    assert "open incidents: unknown (could not be read)" in sent[1].plain


async def test_a_restart_loop_says_started_at_most_once_a_minute(db, clock, delivery):
    starts = [Notices(delivery.outbox, ALERT_CHAT, clock, started_at=clock.time() + 5 * i, database="sqlite")
              for i in range(6)]  # six starts, 5 s apart
    queued = [await n.started() for n in starts]
    minutes = {int(n.started_at // 60) for n in starts}
    assert queued[0] and queued.count(True) == len(minutes) < len(starts)


async def test_stopping_notice_is_delivered_before_the_sender_stops(db, clock, delivery):
    notices = Notices(delivery.outbox, ALERT_CHAT, clock, started_at=clock.time() - 3 * 3600, database="sqlite")
    await delivery.start()
    assert await notices.stopping()          # waits until the row is sent
    row = await delivery.outbox.get(notices.stopping_key)
    assert row is not None and row.status == SENT
    await delivery.stop()                     # what the service does next
    [msg] = delivery.fake.sent(ALERT_CHAT)
    assert "tokenwatch stopping (clean stop) after 3h" in msg.plain


async def test_stopping_waits_only_briefly_when_nothing_sends(db, clock, delivery):
    """The sender is not running: the wait is bounded and the row stays for the next start."""
    notices = Notices(delivery.outbox, ALERT_CHAT, clock, started_at=clock.time(), database="sqlite",
                      stop_wait_s=0.3)
    assert not await notices.stopping()
    row = await delivery.outbox.get(notices.stopping_key)
    assert row is not None and row.status == PENDING
    assert delivery.fake.sent(ALERT_CHAT) == []
