"""A redis-server of the test's own, on a free port, that the test may stop and start again
(the shared Redis on 6379 is never stopped): ``simulator.cluster.RedisServer``, skipped (failed
under CI=true) when redis-server is not installed::

    with OwnRedis() as server:   # or server = OwnRedis(); server.start(): waits until it answers PING
    server.url                # redis://127.0.0.1:<port>/0
    server.stop()             # SIGKILL: clients see connection refused
    server.start()            # the same port, empty again (no persistence)
"""
from __future__ import annotations

import pytest

from simulator.cluster import RedisServer
from tests.conftest import unavailable


class OwnRedis(RedisServer):
    def start(self) -> None:
        try:
            super().start()
        except FileNotFoundError as exc:
            unavailable("redis-server", exc)
        except RuntimeError as exc:
            pytest.fail(str(exc))

    def __enter__(self) -> "OwnRedis":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
