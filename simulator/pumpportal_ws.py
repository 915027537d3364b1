"""PumpPortal's data websocket (``/api/data``), migration events only.

Protocol, as the real service speaks it::

    client -> {"method": "subscribeMigration"}
    server -> {"message": "Successfully subscribed to token migration events."}
    server -> {"signature": "...", "mint": "...pump", "txType": "migrate", "pool": "pump-amm"}

Usage::

    hub = PumpPortalHub(stats)
    app.router.add_get("/api/data", hub.handle, name="pumpportal")
    await hub.broadcast(hub.migration_event(mint, signature))   # -> subscribers reached
    await hub.close_all()                                       # drop every connection
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from simulator.stats import MarketStats

SUBSCRIBED_MIGRATION = "Successfully subscribed to token migration events."
UNSUBSCRIBED_MIGRATION = "Unsubscribed from token migration events."
SEND_TIMEOUT_S = 5.0


def migration_event(mint: str, signature: str, name: str | None = None,
                    symbol: str | None = None) -> dict[str, Any]:
    """A migration event as PumpPortal sends it (name/symbol only when known)."""
    event: dict[str, Any] = {"signature": signature, "mint": mint, "txType": "migrate", "pool": "pump-amm"}
    if name is not None:
        event["name"] = name
    if symbol is not None:
        event["symbol"] = symbol
    return event


class PumpPortalHub:
    """Websocket connections and their migration subscriptions.

    Example::

        hub = PumpPortalHub(MarketStats())
        reached = await hub.broadcast(json.dumps(migration_event("Mint...pump", "sig")))
    """

    def __init__(self, stats: MarketStats) -> None:
        self.stats = stats
        self.connections: dict[web.WebSocketResponse, web.Request] = {}
        self.subscribers: set[web.WebSocketResponse] = set()

    def _count(self) -> None:
        self.stats.ws_open = len(self.connections)
        self.stats.ws_subscribers = len(self.subscribers)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=64 * 1024)
        await ws.prepare(request)
        self.connections[ws] = request
        self.stats.ws_connections += 1
        self._count()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(ws, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_str(json.dumps({"errors": "Binary frames are not supported"}))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.pop(ws, None)
            self.subscribers.discard(ws)
            self._count()
        return ws

    async def _on_text(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            payload = json.loads(text)
            method = payload.get("method") if isinstance(payload, dict) else None
        except ValueError:
            method = None
        if method == "subscribeMigration":
            self.subscribers.add(ws)
            self._count()
            await ws.send_str(json.dumps({"message": SUBSCRIBED_MIGRATION}))
        elif method == "unsubscribeMigration":
            self.subscribers.discard(ws)
            self._count()
            await ws.send_str(json.dumps({"message": UNSUBSCRIBED_MIGRATION}))
        else:
            await ws.send_str(json.dumps({"errors": "Invalid message. Expected {\"method\": \"subscribeMigration\"}"}))

    async def broadcast(self, text: str) -> int:
        """Send ``text`` to every subscriber; returns how many got it."""
        targets = [ws for ws in self.subscribers if not ws.closed]
        if not targets:
            return 0
        results = await asyncio.gather(
            *(asyncio.wait_for(ws.send_str(text), SEND_TIMEOUT_S) for ws in targets),
            return_exceptions=True,
        )
        reached = 0
        for ws, result in zip(targets, results):
            if isinstance(result, BaseException):
                self.subscribers.discard(ws)
            else:
                reached += 1
        self._count()
        return reached

    async def close_all(self, abrupt: bool = True) -> int:
        """Drop every connection: ``abrupt`` cuts the TCP connection (a network drop),
        otherwise a clean close frame (1012, service restart). Returns how many."""
        victims = list(self.connections.items())
        for ws, request in victims:
            if abrupt:
                transport = request.transport
                if transport is not None:
                    transport.abort()
                    continue
            try:
                await asyncio.wait_for(ws.close(code=1012, message=b"service restart"), 1.0)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                pass
        self.subscribers.clear()
        self._count()
        return len(victims)
