"""Pacer: the sender's own spacing under Telegram's limits (manual clock, no sleeping)."""
from __future__ import annotations

from app.clock import ManualClock
from delivery.limits import Pacer


def send_all(pacer: Pacer, clock: ManualClock, chat_id: int, n: int) -> list[float]:
    """Send ``n`` messages as early as the pacer allows; return their (monotonic) times."""
    times = []
    for _ in range(n):
        clock.advance(pacer.ready_in(chat_id))
        assert pacer.ready_in(chat_id) == 0.0
        pacer.reserve(chat_id)
        times.append(clock.monotonic())
    return times


def test_private_chat_gets_one_message_per_second():
    clock = ManualClock()
    pacer = Pacer(clock, global_per_s=30, chat_per_s=1, group_per_min=20)
    times = send_all(pacer, clock, 42, 5)
    assert [round(t - times[0], 6) for t in times] == [0, 1, 2, 3, 4]
    assert pacer.ready_in(43) <= 1 / 30 + 1e-9  # another chat waits only for the global spacing


def test_group_never_exceeds_20_in_a_rolling_minute():
    clock = ManualClock()
    pacer = Pacer(clock, global_per_s=30, chat_per_s=1, group_per_min=20, window_margin_s=0.25)
    times = send_all(pacer, clock, -100, 45)
    for i, t in enumerate(times):
        assert sum(1 for u in times[: i + 1] if u > t - 60.0) <= 20
    assert round(times[20] - times[0], 6) == 60.25  # no slower than the limit requires


def test_global_rate_and_holds():
    clock = ManualClock()
    pacer = Pacer(clock, global_per_s=10, chat_per_s=100, group_per_min=100)
    pacer.reserve(1)
    assert round(pacer.ready_in(2), 6) == 0.1
    clock.advance(0.1)
    pacer.hold_chat(2, 3.0)
    assert pacer.ready_in(2) == 3.0 and pacer.ready_in(3) == 0.0
    pacer.hold_all(5.0)
    assert pacer.ready_in(3) == 5.0
    clock.advance(5.0)
    assert pacer.ready_in(2) == 0.0 and pacer.ready_in(3) == 0.0
