"""A redis-server of a test's own, on a free port, that the test may stop and start again
(the shared Redis on 6379 must never be stopped)::

    with OwnRedis() as server:          # skips (fails under CI=true) without redis-server
        url = server.url                # redis://127.0.0.1:<port>/0
        server.stop()                   # Redis unreachable
        server.start()                  # back, same port, empty (no persistence)
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

from tests.conftest import unavailable

START_DEADLINE_S = 20.0  # generous: a loaded machine starts redis-server slowly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            unavailable("redis-server", "not installed")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        assert self.binary is not None
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_DEADLINE_S
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                unavailable("own redis-server", f"did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def __enter__(self) -> "OwnRedis":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
