"""sd_notify over a real unix datagram socket, as systemd listens (app/sd_notify.py)."""
from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid

import pytest

from app.sd_notify import SdNotify
from app.supervisor import Supervisor

DEADLINE_S = 20.0


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.setblocking(False)
    yield path, sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_ready_status_and_stopping_reach_the_socket(listener) -> None:
    path, sock = listener
    notify = SdNotify.from_env({"NOTIFY_SOCKET": path})
    assert notify.enabled and notify.loops() == []  # no WatchdogSec: no watchdog loop
    assert notify.ready("started: 12 jobs")
    assert notify.status("checking 120 tokens/min")
    assert notify.stopping()
    notify.close()
    assert received(sock) == ["READY=1\nSTATUS=started: 12 jobs", "STATUS=checking 120 tokens/min",
                              "STOPPING=1\nSTATUS=stopping"]


def test_an_abstract_socket_is_named_with_an_at_sign() -> None:
    name = f"tokenwatch-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        notify = SdNotify.from_env({"NOTIFY_SOCKET": "@" + name})
        assert notify.ready()
        notify.close()
        assert received(sock) == ["READY=1"]
    finally:
        sock.close()


def test_without_systemd_every_call_is_a_no_op() -> None:
    notify = SdNotify.from_env({})
    assert not notify.enabled and not notify.ready() and not notify.watchdog() and notify.loops() == []


def test_a_vanished_socket_never_raises(tmp_path, caplog) -> None:
    notify = SdNotify.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not notify.ready() and not notify.watchdog()
    assert notify.dropped == 2
    assert len([r for r in caplog.records if "sd_notify" in r.getMessage()]) == 1  # warned once


def test_the_watchdog_is_only_for_the_process_systemd_named(listener) -> None:
    path, _ = listener
    other = SdNotify.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
    mine = SdNotify.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    assert other.loops() == [] and mine.watchdog_s == 2.0 and [s.id for s in mine.loops()] == ["systemd.watchdog"]


async def test_the_watchdog_loop_pings_from_the_event_loop_and_stops_when_the_loop_is_blocked(listener) -> None:
    path, sock = listener
    notify = SdNotify.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}, status=lambda: "3 workers")
    supervisor = Supervisor()
    supervisor.add_all(notify.loops())
    await supervisor.start()
    try:
        got: list[str] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            got += received(sock)
        assert len(got) >= 3 and set(got) == {"WATCHDOG=1\nSTATUS=3 workers"}
        # a blocked event loop sends nothing: systemd's WatchdogSec runs out and it restarts us
        received(sock)
        time.sleep(0.5)  # noqa: ASYNC251 - the point: the event loop is blocked
        assert received(sock) == []
    finally:
        await supervisor.stop()
        notify.close()
