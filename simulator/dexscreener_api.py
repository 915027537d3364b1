"""DexScreener's public HTTP API, served from a ``MarketModel``.

Routes (shapes as the real API returns them)::

    GET /tokens/v1/{chainId}/{a,b,c}         -> [pair, ...]   (max 30 addresses, else 400)
    GET /token-pairs/v1/{chainId}/{address}  -> [pair, ...]   (every pool, never omitted)
    GET /latest/dex/tokens/{a,b,c}           -> {"schemaVersion": "1.0.0", "pairs": [...] | null}
    GET /token-profiles/latest/v1            -> [profile, ...] (recent tokens, some non-solana)

Each route carries a name (``tokens``, ``token_pairs``, ``latest_dex_tokens``,
``token_profiles``) which the market's middleware uses for rate limits, faults
and ``stats.requests``. Usage::

    api = DexScreenerApi(model)
    app.add_routes(api.routes())
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from simulator.model import MarketModel, derive_address
from simulator.names import market_json

MAX_ADDRESSES = 30
API_ROUTES = frozenset({"tokens", "token_pairs", "latest_dex_tokens"})
PROFILE_ROUTES = frozenset({"token_profiles"})
_OTHER_CHAINS = ("ethereum", "base", "bsc")


def dumps(data: Any) -> str:
    """Compact UTF-8 JSON, as the real API sends it (emoji and RTL marks unescaped, lone surrogates escaped)."""
    return market_json(data, separators=(",", ":"))


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps)


def parse_addresses(raw: str) -> list[str]:
    """Split a comma-separated address list; raises HTTP 400 past ``MAX_ADDRESSES``."""
    addresses = [part.strip() for part in raw.split(",") if part.strip()]
    if len(addresses) > MAX_ADDRESSES:
        raise web.HTTPBadRequest(
            text=dumps({"error": f"too many addresses: {len(addresses)} (max {MAX_ADDRESSES})"}),
            content_type="application/json",
        )
    return addresses


class DexScreenerApi:
    """HTTP handlers over a ``MarketModel``.

    Example::

        app = web.Application()
        app.add_routes(DexScreenerApi(model).routes())
    """

    def __init__(self, model: MarketModel) -> None:
        self.model = model

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/tokens/v1/{chain}/{addresses}", self.tokens, name="tokens"),
            web.get("/token-pairs/v1/{chain}/{address}", self.token_pairs, name="token_pairs"),
            web.get("/latest/dex/tokens/{addresses}", self.latest_dex_tokens, name="latest_dex_tokens"),
            web.get("/token-profiles/latest/v1", self.token_profiles, name="token_profiles"),
        ]

    async def tokens(self, request: web.Request) -> web.Response:
        addresses = parse_addresses(request.match_info["addresses"])
        if request.match_info["chain"] != "solana":
            return json_response([])
        return json_response(self.model.batch_pairs(addresses))

    async def token_pairs(self, request: web.Request) -> web.Response:
        if request.match_info["chain"] != "solana":
            return json_response([])
        return json_response(self.model.token_pairs(request.match_info["address"].strip()))

    async def latest_dex_tokens(self, request: web.Request) -> web.Response:
        pairs = self.model.batch_pairs(parse_addresses(request.match_info["addresses"]))
        return json_response({"schemaVersion": "1.0.0", "pairs": pairs or None})

    async def token_profiles(self, request: web.Request) -> web.Response:
        return json_response(self.profiles())

    def profiles(self, limit: int = 30) -> list[dict[str, Any]]:
        """Latest token profiles: recent local tokens, newest first, plus a few other chains."""
        out: list[dict[str, Any]] = []
        for index, token in enumerate(self.model.recent(limit)):
            if index % 8 == 3:
                out.append(self._foreign_profile(len(out) + len(self.model)))
            symbol_slug = "".join(ch for ch in token.symbol if ch.isascii() and ch.isalnum()) or "token"
            out.append({
                "url": f"https://dexscreener.com/solana/{token.mint.lower()}",
                "chainId": "solana",
                "tokenAddress": token.mint,
                "icon": f"https://dd.dexscreener.com/ds-data/tokens/solana/{token.mint}.png",
                "header": f"https://dd.dexscreener.com/ds-data/tokens/solana/{token.mint}/header.png",
                "description": token.description,
                "links": [
                    {"type": "twitter", "url": f"https://x.com/{symbol_slug.lower()}"},
                    {"label": "Website", "url": f"https://{symbol_slug.lower()}.example"},
                ],
            })
        if not out:
            out.append(self._foreign_profile(0))
        return out

    def _foreign_profile(self, salt: int) -> dict[str, Any]:
        chain = _OTHER_CHAINS[salt % len(_OTHER_CHAINS)]
        address = "0x" + derive_address(self.model.seed, chain, salt).encode().hex()[:40]
        return {
            "url": f"https://dexscreener.com/{chain}/{address}",
            "chainId": chain,
            "tokenAddress": address,
            "icon": f"https://dd.dexscreener.com/ds-data/tokens/{chain}/{address}.png",
            "description": "An EVM token (not for this pipeline).",
            "links": [],
        }
