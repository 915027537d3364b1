"""Admin HTTP endpoints of the local market (never subject to injected faults).

::

    GET  /admin                  -> what is here
    GET  /admin/faults           -> current faults
    POST /admin/faults           -> change faults, JSON object (see simulator.faults); 400 names a bad field
    POST /admin/faults/reset     -> healthy again
    POST /admin/ws/disconnect    -> drop every websocket now ({"disconnected": n}); ?clean=1 sends a close frame
    GET  /admin/stats            -> counters (requests by endpoint, 429s, max_in_window, ws, migrations)
    POST /admin/migrate          -> push one migration: {} spawns a seeded token, or {"mint", "name"?, "symbol"?}

Example (shell)::

    curl -X POST "$ADMIN/faults" -d '{"error_rate": 0.3, "error_codes": [502]}'
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.dexscreener_api import json_response
from simulator.faults import FaultError

if TYPE_CHECKING:
    from simulator.server import LocalMarket


def _error(message: str, status: int = 400) -> web.Response:
    return json_response({"error": message}, status=status)


async def _json_body(request: web.Request, default: Any = None) -> Any:
    text = await request.text()
    if not text.strip():
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not valid JSON: {exc}"}),
                                 content_type="application/json") from None


class AdminApi:
    """Admin routes bound to one market.

    Example::

        app.add_routes(AdminApi(market).routes())
    """

    def __init__(self, market: "LocalMarket") -> None:
        self.market = market

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin", self.index, name="admin_index"),
            web.get("/admin/faults", self.get_faults, name="admin_faults"),
            web.post("/admin/faults", self.set_faults, name="admin_set_faults"),
            web.post("/admin/faults/reset", self.reset_faults, name="admin_reset_faults"),
            web.post("/admin/ws/disconnect", self.ws_disconnect, name="admin_ws_disconnect"),
            web.get("/admin/stats", self.stats, name="admin_stats"),
            web.post("/admin/migrate", self.migrate, name="admin_migrate"),
        ]

    async def index(self, request: web.Request) -> web.Response:
        market = self.market
        return json_response({
            "dexscreener_base_url": market.dexscreener_base_url,
            "pumpportal_ws_url": market.pumpportal_ws_url,
            "endpoints": [f"{r.method} {r.path}" for r in self.routes()],
            "tokens": len(market.model),
        })

    async def get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.market.faults.snapshot())

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await _json_body(request, default={})
        try:
            snapshot = await self.market.apply_faults(body)
        except FaultError as exc:
            return _error(str(exc))
        return json_response(snapshot)

    async def reset_faults(self, request: web.Request) -> web.Response:
        return json_response(await self.market.reset_faults())

    async def ws_disconnect(self, request: web.Request) -> web.Response:
        clean = request.query.get("clean", "") not in ("", "0", "false")
        count = await self.market.disconnect_ws(abrupt=not clean)
        return json_response({"disconnected": count})

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(self.market.stats.as_dict())

    async def migrate(self, request: web.Request) -> web.Response:
        body = await _json_body(request, default={})
        if not isinstance(body, dict):
            return _error("body must be a JSON object")
        mint, name, symbol = body.get("mint"), body.get("name"), body.get("symbol")
        for field_name, value in (("mint", mint), ("name", name), ("symbol", symbol)):
            if value is not None and not isinstance(value, str):
                return _error(f"{field_name} must be a string")
        if mint is None:
            mint = self.market.model.spawn().mint
        elif not mint.strip():
            return _error("mint must not be empty")
        reached = await self.market.push_migration(mint, name=name, symbol=symbol)
        return json_response({"mint": mint, "subscribers": reached})
