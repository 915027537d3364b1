"""The HTTP side of monitoring: ``/metrics`` (Prometheus text), ``/healthz`` and ``/readyz``.

    server = HttpServer(registry=registry, db=db, host="127.0.0.1", port=0, clock=clock)
    await server.start()
    server.port                       # the bound port (ephemeral when port=0)
    await server.stop()

    server = HttpServer.from_context(ctx)   # settings.http_host/http_port, ctx.collectors, ctx.db

All three read the latest ``MonitoringSnapshot`` (``registry.coordinator.latest``, one per
collection cycle), never their own queries, so they agree with /status and the status line.
``/metrics`` renders the snapshot's samples through a custom prometheus_client collector on its
own ``CollectorRegistry`` (never the global one); histograms (``kind="histogram"`` in
``metric_names``) are exposed as ``_bucket``/``_sum``/``_count`` families. ``/healthz`` is 200
while the process serves requests (liveness only). ``/readyz`` is 200 when the database answers,
the snapshot is recent (``max_collection_age_s``) and says the pipeline is not stalled; else 503
with a JSON ``reason``::

    {"ready": false, "reason": "pipeline stalled: no successful check for 139s at fetch: ..."}
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
from monitoring.context import MonitoringContext
from monitoring.collector import CollectorRegistry
from monitoring.metric_names import METRICS, MetricInfo, histogram_of
from monitoring.sample import Sample

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


def _le(sample: Sample) -> float:
    try:
        return float(sample.labels.get("le", "nan"))
    except ValueError:
        return float("nan")


def _order(item: tuple[tuple[str, str], Sample]) -> tuple:
    """Series sorted by name and labels; a histogram's buckets by their numeric ``le``
    (``+Inf`` last), then ``_sum`` and ``_count``."""
    (name, key), sample = item
    hist = histogram_of(name)
    if hist is None:
        return (name, key, 0, 0.0)
    other = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
    part = name[len(hist.name):]
    return (hist.name, str(other), ("_bucket", "_sum", "_count").index(part), _le(sample))


class SampleExposition:
    """A prometheus_client collector over the latest snapshot's samples.

        prom = PromRegistry(auto_describe=False); prom.register(SampleExposition(registry))
        generate_latest(prom)
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        snapshot = self.registry.coordinator.latest
        samples = snapshot.samples if snapshot is not None else {}
        families: dict[str, Metric] = {}
        for (name, _key), sample in sorted(samples.items(), key=_order):
            exposed = _metric_name(name)
            info: MetricInfo | None = METRICS.get(name) or histogram_of(name)
            kind = info.kind if info else "unknown"
            if kind == "histogram" and info is not None:
                family_name = info.name
            elif kind == "counter" and exposed.endswith("_total"):
                family_name = exposed[:-6]
            else:
                family_name = exposed
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
        self._prom.register(SampleExposition(registry))

    @classmethod
    def from_context(cls, ctx: MonitoringContext, **kwargs: Any) -> "HttpServer":
        """Build from a ``MonitoringContext`` after ``build_monitoring`` set its collectors."""
        if ctx.collectors is None:
            raise ValueError("build the collectors (monitoring.setup.build_monitoring) before the HTTP server")
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
        """(ready, reason when not ready): the database answers now, and the latest snapshot is
        recent and judges the pipeline not stalled (``MonitoringSnapshot.not_ready_reason``)."""
        if self.db is not None:
            try:
                ok = await asyncio.wait_for(self.db.ping(), timeout=self.db_timeout_s)
            except asyncio.TimeoutError:
                ok = False
            if not ok:
                return False, "database unreachable"
        snapshot = self.registry.coordinator.latest
        if snapshot is None:
            return False, "no metrics collection yet"
        reason = snapshot.not_ready_reason(self.clock.time(), self.max_collection_age_s, database=self.db is None)
        return reason is None, reason

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready, reason = await self.readiness()
        if ready:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "reason": reason}, status=503)
