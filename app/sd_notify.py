"""systemd's notify protocol (``Type=notify``, ``WatchdogSec=``), without libsystemd.

systemd passes ``$NOTIFY_SOCKET`` (a unix datagram socket; ``@name`` is an abstract socket) and,
with ``WatchdogSec=``, ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``). We send one datagram per
message, never blocking: a full socket drops the message rather than stall the event loop.
Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op::

    notify = SdNotify.from_env(status=lambda: "checking 120 tokens/min")
    supervisor.add_all(notify.loops())   # WATCHDOG=1 (and STATUS=) from a loop on the event loop
    notify.ready("started")              # READY=1 once the service is up
    ...
    notify.stopping()                    # STOPPING=1 when shutting down

The watchdog loop runs on the event loop, so a blocked loop stops the pings and systemd kills and
restarts the service after ``WatchdogSec`` (``deploy/tokenwatch.service``). It pings every half
of ``WatchdogSec``, as sd_watchdog_enabled(3) advises.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from app.supervisor import LoopSpec

log = logging.getLogger(__name__)

WATCHDOG_PING_SHARE = 0.5  # ping every WatchdogSec x this


def socket_address(value: str) -> str:
    """``$NOTIFY_SOCKET`` as ``socket.sendto`` wants it: ``@name`` is the abstract ``\\0name``."""
    return "\0" + value[1:] if value.startswith("@") else value


class SdNotify:
    """A sender of sd_notify messages (see the module docstring)."""

    def __init__(self, notify_socket: str | None, *, watchdog_usec: int | None = None,
                 status: Callable[[], str] | None = None) -> None:
        self.address = socket_address(notify_socket) if notify_socket else None
        self.watchdog_s = watchdog_usec / 1e6 if watchdog_usec else None
        self.status_source = status
        self.sent = 0
        self.dropped = 0
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 status: Callable[[], str] | None = None) -> "SdNotify":
        """From systemd's variables; the watchdog only if ``$WATCHDOG_PID`` (when set) is this process."""
        env = os.environ if env is None else env
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (not pid or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_usec=usec, status=status)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; False if not under systemd or not sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode("utf-8", "replace"), self.address)
        except OSError as exc:  # a full socket (BlockingIOError), systemd gone: never raise, warn once
            self.dropped += 1
            if not self._warned:
                self._warned = True
                log.warning("sd_notify: could not send to %r: %s", self.address, exc)
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = "stopping") -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    async def run(self) -> None:
        """Ping the watchdog (with the current STATUS=, if a source was given) until cancelled."""
        assert self.watchdog_s is not None
        while True:
            fields = ["WATCHDOG=1"]
            if self.status_source is not None:
                try:
                    fields.append(f"STATUS={self.status_source()}")
                except Exception:  # noqa: BLE001 - a status line never stops the watchdog
                    log.exception("sd_notify: status source failed")
            self.send(*fields)
            await asyncio.sleep(self.watchdog_s * WATCHDOG_PING_SHARE)

    def loops(self) -> list["LoopSpec"]:
        """The watchdog loop when systemd asked for one (``WatchdogSec=``), else nothing."""
        from app.supervisor import LoopSpec

        if not self.enabled or self.watchdog_s is None:
            return []
        return [LoopSpec("systemd.watchdog", self.run)]

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
