"""A redis-server of the test's own, on a free port, that the test may stop and start again
(the shared Redis on 6379 is never stopped)::

    server = OwnRedis()
    server.start()            # waits until it answers PING
    server.url                # redis://127.0.0.1:<port>/0
    server.stop()             # SIGKILL: clients see connection refused
    server.start()            # the same port, empty again (no persistence)
    server.stop()
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from tests.conftest import unavailable

START_DEADLINE_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server", "not installed")
        assert binary is not None
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server on port {self.port} exited with {self.proc.returncode}")
            time.sleep(0.05)
        pytest.fail(f"redis-server on port {self.port} did not answer within {START_DEADLINE_S:.0f}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
