"""The HTTP side of monitoring: ``/metrics`` (Prometheus text), ``/healthz`` and ``/readyz``.

    server = HttpServer(registry=registry, db=db, host="127.0.0.1", port=0, clock=clock)
    await server.start()
    server.port                       # the bound port (ephemeral when port=0)
    await server.stop()

    server = HttpServer.from_context(ctx)   # settings.http_host/http_port, ctx.collectors, ctx.db

``/metrics`` renders the registry's latest samples through a custom prometheus_client
collector on its own ``CollectorRegistry`` (never the global one). ``/healthz`` is 200 while
the process serves requests. ``/readyz`` is 200 when the database answers and the last
collection is recent, else 503 with a JSON ``reason``.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry as PromRegistry
from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from monitoring.collector import CollectorRegistry
from monitoring.metric_names import METRICS

log = logging.getLogger(__name__)

_BAD_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_BAD_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def _metric_name(name: str) -> str:
    clean = _BAD_NAME_CHARS.sub("_", name)
    return clean if clean and not clean[0].isdigit() else "_" + clean


def _label_name(name: str) -> str:
    clean = _BAD_LABEL_CHARS.sub("_", name)
    if not clean or clean[0].isdigit():
        clean = "_" + clean
    return "_" + clean if clean.startswith("__") else clean


class SampleExposition:
    """A prometheus_client collector over our registry's latest samples.

        prom = PromRegistry(auto_describe=False); prom.register(SampleExposition(registry))
        generate_latest(prom)
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for (name, _key), sample in sorted(self.registry.latest().items()):
            exposed = _metric_name(name)
            info = METRICS.get(name)
            kind = info.kind if info else "unknown"
            family_name = exposed[:-6] if kind == "counter" and exposed.endswith("_total") else exposed
            family = families.get(family_name)
            if family is None:
                family = Metric(family_name, info.help if info else "not listed in monitoring/metric_names.py", kind)
                families[family_name] = family
            labels = {_label_name(str(k)): str(v) for k, v in sample.labels.items()}
            family.add_sample(exposed, labels, float(sample.value))
        yield from families.values()


class HttpServer:
    """aiohttp server for the monitoring endpoints; ``port`` is the bound port after ``start()``."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        db: Database | None,
        host: str = "127.0.0.1",
        port: int = 8080,
        clock: Clock = SYSTEM_CLOCK,
        max_collection_age_s: float | None = None,
        db_timeout_s: float = 2.0,
    ) -> None:
        self.registry = registry
        self.db = db
        self.host = host
        self.requested_port = port
        self.clock = clock
        self.max_collection_age_s = max_collection_age_s or max(30.0, 3 * registry.collect_interval_s)
        self.db_timeout_s = db_timeout_s
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._prom = PromRegistry(auto_describe=False)
        self._prom.register(SampleExposition(registry))  # type: ignore[arg-type]

    @classmethod
    def from_context(cls, ctx: Any, **kwargs: Any) -> "HttpServer":
        """Build from an ``AppContext`` (settings.http_host/http_port, collectors, db, clock)."""
        return cls(registry=ctx.collectors, db=ctx.db, host=ctx.settings.http_host,
                   port=ctx.settings.http_port, clock=ctx.clock, **kwargs)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound socket only here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.requested_port
        log.info("monitoring HTTP on http://%s:%s (/metrics /healthz /readyz)", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- handlers ------------------------------------------------------------------
    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._prom)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readiness(self) -> tuple[bool, str | None]:
        """(ready, reason when not ready)."""
        if self.db is not None:
            try:
                ok = await asyncio.wait_for(self.db.ping(), timeout=self.db_timeout_s)
            except asyncio.TimeoutError:
                ok = False
            if not ok:
                return False, "database unreachable"
        last = self.registry.last_collection_at
        if last is None:
            return False, "no metrics collection yet"
        age = self.clock.time() - last
        if age > self.max_collection_age_s:
            return False, f"last metrics collection {age:.0f}s ago (limit {self.max_collection_age_s:.0f}s)"
        return True, None

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready, reason = await self.readiness()
        if ready:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "reason": reason}, status=503)
