"""Several real tokenwatch processes on one PostgreSQL (and Redis), for failover tests and the
failover benchmark. Each member is ``python -m tokenwatch.cli run`` (or ``worker``) in a
subprocess, configured by environment variables, its output in a log file::

    cluster = Cluster(database_url=pg_url, workdir=tmp, env={"REDIS_URL": url, "TELEGRAM_API_BASE": ...})
    a, b = await cluster.start("a"), await cluster.start("b")
    leader = await cluster.wait_for_leader(timeout_s=60)        # its Member, from table processes
    leader.kill()                                               # SIGKILL (also .freeze() / .thaw())
    await cluster.close()                                       # SIGTERM, then SIGKILL after a grace

``RedisServer`` is a redis-server of the caller's own, on a free port, that it may stop and start
again (an outage) without touching a shared one::

    server = RedisServer(); server.start(); server.url; server.stop(); server.start()

Roles are read from the process registry (table ``processes``, written every PROCESS_HEARTBEAT_S),
so a figure derived from them is precise to about one heartbeat.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 20.0


@dataclass
class Member:
    name: str
    proc: asyncio.subprocess.Process
    log: Path
    frozen: bool = False

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, holding whatever it held."""
        if self.proc.returncode is None:
            os.kill(self.pid, signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: a hung process (its sockets stay open, nothing runs)."""
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.frozen = False

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"  [{self.name}] {line}" for line in text[-lines:])


@dataclass
class Cluster:
    database_url: str
    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    members: list[Member] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_", "REDIS_"))}
        env.update({"PYTHONPATH": str(ROOT), "DATABASE_URL": self.database_url, "HTTP_PORT": "0", "SIM_PORT": "0",
                    "STATUS_LINE": "false", "LOG_LEVEL": "INFO"})
        env.update(self.env)
        return env

    async def start(self, name: str, command: str = "run") -> Member:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", f"from tokenwatch.cli import main; raise SystemExit(main([{command!r}]))",
                cwd=self.workdir, env=self.environment(), stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT)
        member = Member(name, proc, log)
        self.members.append(member)
        return member

    def member(self, pid: int) -> Member | None:
        return next((m for m in self.members if m.pid == pid), None)

    async def rows(self) -> list[dict[str, Any]]:
        """Table ``processes`` with each row's heartbeat age (seconds)."""
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect("postgresql://" + self.database_url.split("://", 1)[1], timeout=10)
        try:
            rows = await conn.fetch("SELECT id, role, pid, fence, heartbeat_at FROM processes")
        except asyncpg.UndefinedTableError:
            return []   # not migrated yet (the first process is starting)
        finally:
            await conn.close()
        now = time.time()
        return [dict(r) | {"age_s": now - float(r["heartbeat_at"])} for r in rows]

    async def roles(self, fresh_s: float = 5.0) -> dict[int, str]:
        """pid -> role of every process that beat within ``fresh_s``."""
        return {int(r["pid"]): str(r["role"]) for r in await self.rows() if r["age_s"] <= fresh_s}

    async def wait_for(self, predicate, timeout_s: float, what: str, poll_s: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            result = await predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not within {timeout_s:.0f}s\n{self.tails()}")
            await asyncio.sleep(poll_s)

    async def wait_for_leader(self, timeout_s: float, *, not_pid: int | None = None, fresh_s: float = 5.0) -> Member:
        async def leader() -> Member | None:
            pids = [pid for pid, role in (await self.roles(fresh_s)).items() if role == "leader" and pid != not_pid]
            return self.member(pids[0]) if len(pids) == 1 else None

        return await self.wait_for(leader, timeout_s, "one leader")

    def tails(self) -> str:
        return "\n".join(m.tail() for m in self.members)

    async def close(self) -> None:
        for m in self.members:
            if m.proc.returncode is None:
                if m.frozen:
                    m.thaw()
                m.proc.send_signal(signal.SIGTERM)
        for m in self.members:
            try:
                await asyncio.wait_for(m.proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                m.kill()
                await m.proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server without persistence on ``port`` (a free one by default): ``stop()`` kills it
    (clients see the connection refused), ``start()`` brings it back empty on the same port."""

    start_deadline_s = 20.0

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_deadline_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}")
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {self.start_deadline_s:.0f}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
