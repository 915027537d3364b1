"""/metrics, /healthz and /readyz over real loopback HTTP."""
from __future__ import annotations

import aiohttp
import pytest

from app.clock import ManualClock
from app.db import Database, make_engine
from monitoring import metric_names as m
from monitoring.collector import CollectorRegistry
from monitoring.sample import Sample
from monitoring.http import HttpServer


class Fixed:
    name = "fixed"

    async def collect(self, now: float) -> list[Sample]:
        return [
            Sample(m.API_ERROR_RATE, 0.25, {"endpoint": 'to"kens\n'}),
            Sample(m.API_REQUESTS_TOTAL, 12.0, {"endpoint": "tokens"}),
            Sample("tokenwatch_undocumented_thing", 5.0, {"bad-label.name": "x"}),
        ]


@pytest.fixture
async def bad_db():
    database = Database(make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"), retries=0)
    yield database
    await database.dispose()


@pytest.fixture
async def served(sqlite_db, clock: ManualClock):
    registry = CollectorRegistry(clock=clock, collect_interval_s=10)
    registry.register(Fixed())
    server = HttpServer(registry=registry, db=sqlite_db, port=0, clock=clock)
    await server.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        yield server, registry, http
    await server.stop()


async def test_metrics_exposes_latest_samples(served, clock: ManualClock) -> None:
    server, registry, http = served
    assert server.port and server.port != 0
    await registry.run_collection()
    async with http.get(f"{server.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        body = await resp.text()
    assert "# TYPE tokenwatch_api_error_rate gauge" in body
    assert 'tokenwatch_api_error_rate{endpoint="to\\"kens\\n"} 0.25' in body
    assert "# TYPE tokenwatch_api_requests_total counter" in body
    assert 'tokenwatch_api_requests_total{endpoint="tokens"} 12.0' in body
    assert 'tokenwatch_undocumented_thing{bad_label_name="x"} 5.0' in body
    assert 'tokenwatch_collector_errors_total{collector="fixed"} 0.0' in body


async def test_healthz_and_readyz(served, clock: ManualClock, bad_db) -> None:
    server, registry, http = served
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 503
        assert (await resp.json())["reason"] == "no metrics collection yet"

    await registry.run_collection()
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 200 and (await resp.json()) == {"ready": True}

    clock.advance(31)  # 3 collection intervals (30 s) without a collection
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 503
        assert "last metrics collection" in (await resp.json())["reason"]

    await registry.run_collection()
    good_db, server.db = server.db, bad_db
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 503
        assert (await resp.json()) == {"ready": False, "reason": "database unreachable"}
    async with http.get(f"{server.url}/healthz") as resp:
        assert resp.status == 200  # alive, just not ready
    server.db = good_db
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 200
