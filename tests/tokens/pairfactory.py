"""Pair dicts shaped like DexScreener's, for unit tests."""
from __future__ import annotations

from typing import Any

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
OTHER = "9wFFyRfZBsuAha4YcuxcXLKwMxJR43S7fPfQLusDBzvT"


def pair(dex: str = "pumpswap", quote: str | None = "SOL", liq: Any = 1000.0, *, mint: str = MINT,
         address: str | None = None, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "chainId": "solana",
        "dexId": dex,
        "url": "https://dexscreener.com/solana/x",
        "pairAddress": address or f"{dex}-{quote}-{liq}-{mint[:6]}",
        "baseToken": {"address": mint, "name": "Token", "symbol": "TKN"},
        "quoteToken": {"address": "So11111111111111111111111111111111111111112", "name": "Wrapped SOL",
                       "symbol": quote},
        "priceNative": "0.0000001",
        "priceUsd": "0.00002",
        "txns": {"m5": {"buys": 5, "sells": 3}, "h1": {"buys": 40, "sells": 30}},
        "volume": {"m5": 500.0, "h1": 4000.0},
        "liquidity": {"usd": liq, "base": 1, "quote": 1},
        "pairCreatedAt": 1_699_999_000_000,
    }
    data.update(overrides)
    return data
