"""``LocalMarket``: DexScreener + PumpPortal on one loopback port, with faults.

In a test (or a demo) the whole market is one object::

    market = LocalMarket(seed=42, migration_interval_s=3.0, port=0)
    await market.start()
    market.dexscreener_base_url   # "http://127.0.0.1:PORT"
    market.pumpportal_ws_url      # "ws://127.0.0.1:PORT/api/data"
    market.admin_url              # "http://127.0.0.1:PORT/admin"
    market.model.add_token(mint, pairs=[{"dex_id": "raydium", "liquidity_usd": 500}])
    await market.push_migration(mint)
    market.faults.set(error_rate=0.5)
    await market.stop()

``async with LocalMarket(...) as market:`` does the same. Standalone
(``tokenwatch simulate``) runs ``run_standalone(settings)``.
"""
from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Any

from aiohttp import web

from app.clock import SYSTEM_CLOCK, Clock
from simulator.admin import AdminApi
from simulator.dexscreener_api import API_ROUTES, PROFILE_ROUTES, DexScreenerApi
from simulator.faults import FaultController
from simulator.model import MarketModel, derive_address
from simulator.names import market_json
from simulator.pumpportal_ws import PumpPortalHub, migration_event
from simulator.scenario import Scenario, load_scenario
from simulator.stats import MarketStats, SlidingWindowLimiter

log = logging.getLogger("tokenwatch.simulator")

HANG_POLL_S = 0.05
SHUTDOWN_TIMEOUT_S = 1.0


class LocalMarket:
    """The local DexScreener + PumpPortal market (see module docstring).

    Example::

        async with LocalMarket(seed=1, autostart_flow=False, rate_limit_per_min=5) as market:
            mint = market.model.seed_tokens(1)[0]
            async with aiohttp.ClientSession() as http:
                url = f"{market.dexscreener_base_url}/token-pairs/v1/solana/{mint}"
                pairs = await (await http.get(url)).json()

    Extra keyword arguments: ``fate_weights`` and ``hostile_share`` (passed to
    ``MarketModel``), ``window_s`` (rate-limit window, 60 s like DexScreener).
    """

    def __init__(
        self,
        seed: int = 42,
        migration_interval_s: float = 3.0,
        rate_limit_per_min: int = 300,
        profiles_rate_limit_per_min: int = 60,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: str | Path | Scenario | None = None,
        clock: Clock | None = None,
        autostart_flow: bool = True,
        *,
        fate_weights: dict[str, float] | None = None,
        hostile_share: float = 0.2,
        window_s: float = 60.0,
    ) -> None:
        if migration_interval_s <= 0:
            raise ValueError("migration_interval_s must be > 0")
        self.seed = seed
        self.migration_interval_s = migration_interval_s
        self.host = host
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.autostart_flow = autostart_flow
        self.model = MarketModel(seed, self.clock, fate_weights=fate_weights, hostile_share=hostile_share)
        self.faults = FaultController(seed, self.clock)
        self.stats = MarketStats(
            api_limiter=SlidingWindowLimiter(rate_limit_per_min, window_s, self.clock),
            profiles_limiter=SlidingWindowLimiter(profiles_rate_limit_per_min, window_s, self.clock),
        )
        self.hub = PumpPortalHub(self.stats)
        self.scenario: Scenario | None = (
            load_scenario(scenario) if isinstance(scenario, (str, Path)) and str(scenario).strip()
            else scenario if isinstance(scenario, Scenario) else None
        )
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._flow_rng = random.Random(f"flow:{seed}")
        self._signature_seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outage_tasks: set[asyncio.Task[Any]] = set()
        self._outage_timer: asyncio.Task[Any] | None = None
        self._outage_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.faults.add_listener(self._on_faults_changed)

    # -- addresses -----------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalMarket is not started")
        return self._port

    @property
    def dexscreener_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pumpportal_ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/api/data"

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.port}/admin"

    @property
    def running(self) -> bool:
        return self._runner is not None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Listen, then start the migration flow and the scenario (if any)."""
        if self._runner is not None:
            raise RuntimeError("LocalMarket already started")
        self._stopping = asyncio.Event()
        self._outage_lock = asyncio.Lock()
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(DexScreenerApi(self.model).routes())
        app.router.add_get("/api/data", self.hub.handle, name="pumpportal")
        app.add_routes(AdminApi(self).routes())
        runner = web.AppRunner(app, handle_signals=False, access_log=None,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port or self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._site = runner, site
        self._port = runner.addresses[0][1]
        if self.autostart_flow:
            self._spawn(self._flow(), "flow")
        if self.scenario is not None:
            self._spawn(self._run_scenario(self.scenario), "scenario")
        if self.faults.outage is not None:
            await self._apply_outage()

    async def stop(self) -> None:
        """Stop everything this market started; safe to call twice."""
        if self._runner is None:
            return
        self._stopping.set()
        tasks = list(self._tasks | self._outage_tasks)
        if self._outage_timer is not None:
            tasks.append(self._outage_timer)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._outage_tasks.clear()
        self._outage_timer = None
        await self.hub.close_all(abrupt=True)
        runner, self._runner, self._site = self._runner, None, None
        await runner.cleanup()

    async def __aenter__(self) -> "LocalMarket":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"localmarket-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- migrations ------------------------------------------------------------------
    async def push_migration(self, mint: str, name: str | None = None, symbol: str | None = None,
                             raw: str | None = None) -> int:
        """Send a migration event to every subscriber; returns how many got it.

        An unknown ``mint`` is added to the model first (one steady pump pool).
        ``raw`` sends that text frame as is instead (garbage for robustness tests).
        """
        if raw is not None:
            self.stats.faults["raw_frame"] += 1
            return await self.hub.broadcast(raw)
        if not isinstance(mint, str) or not mint:
            raise ValueError("mint must be a non-empty string")
        if mint not in self.model:
            self.model.add_token(mint, name=name, symbol=symbol)
        self._signature_seq += 1
        signature = derive_address("signature", self.seed, mint, self._signature_seq, size=64)
        event = migration_event(mint, signature, name=name, symbol=symbol)
        self.stats.migrations_sent += 1
        return await self.hub.broadcast(market_json(event))

    async def _flow(self) -> None:
        while True:
            await asyncio.sleep(self.migration_interval_s * self._flow_rng.uniform(0.5, 1.5))
            try:
                token = self.model.spawn()
                with_meta = self._flow_rng.random() < 0.2  # name/symbol usually absent
                await self.push_migration(token.mint, name=token.name if with_meta else None,
                                          symbol=token.symbol if with_meta else None)
            except Exception:  # noqa: BLE001 - the flow must outlive one bad broadcast
                log.exception("local market: migration flow step failed")

    # -- faults ----------------------------------------------------------------------
    async def apply_faults(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply fault changes, waiting until an outage change took effect."""
        snapshot = self.faults.update(changes)
        await self._settle()
        return snapshot

    async def reset_faults(self) -> dict[str, Any]:
        snapshot = self.faults.reset()
        if self._outage_timer is not None:
            self._outage_timer.cancel()
            self._outage_timer = None
        await self._settle()
        return snapshot

    async def disconnect_ws(self, abrupt: bool = True) -> int:
        """Drop every websocket connection now; returns how many were dropped."""
        count = await self.hub.close_all(abrupt=abrupt)
        self.stats.faults["ws_disconnect"] += count
        return count

    async def _settle(self) -> None:
        while self._outage_tasks:
            await asyncio.gather(*list(self._outage_tasks), return_exceptions=True)

    def _on_faults_changed(self, changes: dict[str, Any]) -> None:
        if self._runner is None:
            return
        loop = asyncio.get_running_loop()
        if "outage_s" in changes:
            if self._outage_timer is not None:
                self._outage_timer.cancel()
            self._outage_timer = loop.create_task(self._end_outage_after(changes["outage_s"]))
        if "outage" in changes or "outage_mode" in changes:
            task = loop.create_task(self._apply_outage())
            self._outage_tasks.add(task)
            task.add_done_callback(self._outage_tasks.discard)

    async def _end_outage_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._outage_timer = None
        self.faults.set(outage=False)

    async def _apply_outage(self) -> None:
        async with self._outage_lock:
            if self._runner is None:
                return
            mode = self.faults.outage
            if mode is not None:
                await self.hub.close_all(abrupt=True)
            if mode == "refuse" and self._site is not None:
                site, self._site = self._site, None
                await site.stop()
                log.info("local market: outage, connections refused on port %s", self._port)
            elif mode != "refuse" and self._site is None:
                site = web.TCPSite(self._runner, self.host, self._port)
                await site.start()
                self._site = site
                log.info("local market: listening again on port %s", self._port)

    async def _run_scenario(self, scenario: Scenario) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for step in scenario.steps:
            delay = started + step.at_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if step.reset:
                    await self.reset_faults()
                if step.set:
                    await self.apply_faults(step.set)
                if step.ws_disconnect:
                    await self.disconnect_ws()
                log.info("local market: scenario %s at %.0fs: %s", scenario.name, step.at_s,
                         step.note or step.set or ("reset" if step.reset else "ws disconnect"))
            except Exception:  # noqa: BLE001
                log.exception("local market: scenario %s step at %.0fs failed", scenario.name, step.at_s)

    # -- request path ------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.name or ""
        if route.startswith("admin"):
            return await handler(request)
        outage = self.faults.outage
        if outage is not None:
            self.stats.faults["outage"] += 1
            if outage == "refuse" and request.transport is not None:
                request.transport.abort()  # a kept-alive connection dies like a refused one
            return web.Response(status=503, text="Service Unavailable")
        if route == "pumpportal":
            return await handler(request)
        self.stats.requests[route or "unknown"] += 1
        if route in API_ROUTES:
            limiter, profiles = self.stats.api_limiter, False
        elif route in PROFILE_ROUTES:
            limiter, profiles = self.stats.profiles_limiter, True
        else:
            return await handler(request)
        assert limiter is not None
        retry_after = self.faults.storm_retry_after()
        if retry_after is not None:
            self.stats.faults["storm"] += 1
            limiter.note()
        else:
            retry_after = limiter.hit()
        if retry_after is not None:
            if profiles:
                self.stats.served_429_profiles += 1
            else:
                self.stats.served_429 += 1
            return web.Response(status=429, text="Too Many Requests",
                                headers={"Retry-After": self.faults.retry_after_header(retry_after)})
        self.stats.enter()
        try:
            return await self._answer(request, handler)
        finally:
            self.stats.leave()

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """An accepted request on the rate-limited endpoints: latency, then the response faults."""
        delay = self.faults.latency_s()
        if delay > 0:
            self.stats.faults["latency"] += 1
            await asyncio.sleep(delay)
        fault = self.faults.draw_response_fault()
        if fault is None:
            return await handler(request)
        kind, status = fault
        self.stats.faults[kind] += 1
        if kind == "hang":
            await self._hang(request)
            return web.Response(status=503, text="Service Unavailable")
        if kind == "error":
            headers = {"Retry-After": self.faults.retry_after_header(1)} if status == 429 else None
            return web.Response(status=status, content_type="text/html", headers=headers,
                                text=f"<html><body><h1>{status} error</h1></body></html>")
        response = await handler(request)
        if kind == "empty":
            return web.Response(status=200, body=b"", content_type="application/json")
        body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
        return web.Response(status=200, body=self.faults.malformed_body(body), content_type="application/json")

    async def _hang(self, request: web.Request) -> None:
        """Never answer: wait until the client gives up or the market stops."""
        while not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(HANG_POLL_S)


def market_from_settings(settings: Any) -> LocalMarket:
    """The local market as ``SIM_*`` settings describe it. With ``SIM_SEED`` unset every start
    draws a new seed (so a restarted service sees new tokens, not the previous run's again);
    ``market.seed`` tells which, to replay a run."""
    seed = settings.sim_seed if settings.sim_seed is not None else random.SystemRandom().randrange(1, 2**31)
    return LocalMarket(
        seed=seed,
        migration_interval_s=settings.sim_migration_interval_s,
        rate_limit_per_min=settings.sim_rate_limit_per_min,
        profiles_rate_limit_per_min=getattr(settings, "profiles_rate_limit_per_min", 60),
        host=settings.sim_host,
        port=settings.sim_port,
        scenario=settings.sim_scenario or None,
    )


async def run_standalone(settings: Any) -> None:
    """Run the local market until cancelled (``tokenwatch simulate``); prints its URLs."""
    market = market_from_settings(settings)
    await market.start()
    try:
        print(f"local market running (seed {market.seed})", flush=True)
        print(f"  DEXSCREENER_BASE_URL={market.dexscreener_base_url}", flush=True)
        print(f"  PUMPPORTAL_WS_URL={market.pumpportal_ws_url}", flush=True)
        print(f"  admin: {market.admin_url}  (faults, stats, ws/disconnect, migrate)", flush=True)
        if market.scenario is not None:
            print(f"  scenario: {market.scenario.name} ({len(market.scenario.steps)} steps)", flush=True)
        await asyncio.Event().wait()
    finally:
        await market.stop()
