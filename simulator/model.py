"""The seeded state of the local market: tokens, their pools, and how pools evolve.

Nothing here does I/O. Pool data is a pure function of (token parameters, clock
time), so thousands of tokens cost nothing until asked for, the same seed and
the same clock readings give the same JSON, and tests move time with a
``ManualClock`` instead of sleeping::

    clock = ManualClock(1_700_000_000.0)
    model = MarketModel(seed=42, clock=clock)
    token = model.spawn()                     # a freshly migrated token with a random fate
    pairs = model.token_pairs(token.mint)     # DexScreener pair objects, right now
    clock.advance(30)                         # an "activate" token has an external pool by now

Fates (tunable with ``fate_weights``): ``fade`` (activity decays), ``activate``
(an external raydium/meteora/orca pool with >= $350 liquidity appears 5-30 s in),
``pump`` (price and activity grow), ``die`` (liquidity drained to ~0). Tokens
added by hand (``add_token``) default to ``steady``: one pump pool, constant
activity, never an external pool.
"""
from __future__ import annotations

import copy
import hashlib
import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import Any, Iterable

from app.clock import SYSTEM_CLOCK, Clock
from simulator.names import NameGenerator
from tokens.intake import BASE58_ALPHABET

SOL_USD = 150.0
SOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
QUOTES: dict[str, tuple[str, str, float]] = {
    # symbol -> (mint, name, usd price)
    "SOL": (SOL_MINT, "Wrapped SOL", SOL_USD),
    "USDC": (USDC_MINT, "USD Coin", 1.0),
}
PUMP_DEX_IDS = ("pumpswap", "pumpfun-amm")
EXTERNAL_DEX_IDS = ("raydium", "meteora", "orca")
WINDOWS_S: dict[str, float] = {"m5": 300.0, "h1": 3600.0, "h6": 21600.0, "h24": 86400.0}
FATES = ("fade", "activate", "pump", "die", "steady")
DEFAULT_FATE_WEIGHTS: dict[str, float] = {"fade": 0.40, "activate": 0.35, "pump": 0.12, "die": 0.13}
TOKEN_SUPPLY = 1_000_000_000
GROWTH_CAP_S = 3600.0

def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as Solana addresses are written."""
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(BASE58_ALPHABET[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def derive_address(*parts: object, size: int = 32) -> str:
    """A deterministic, address-shaped base58 string derived from ``parts``."""
    digest = hashlib.sha512(":".join(map(str, parts)).encode()).digest()[:size]
    return b58encode(digest).rjust(43, "1")


def decimal_str(value: float) -> str:
    """A price as DexScreener writes it: a plain decimal string, never ``1e-05``."""
    if value == 0 or not math.isfinite(value):
        return "0"
    text = format(Decimal(f"{value:.6g}"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class UnknownToken(KeyError):
    """The market has no token with that mint."""


@dataclass
class SimPool:
    """One pool's plan; its pair JSON at any time is computed from this."""

    pair_address: str
    dex_id: str
    quote: str
    appear_after_s: float  # after the token's creation
    liquidity_usd: float
    rate0: float  # trades per second at appearance
    rate_tau_s: float | None  # exponential decay of activity; None = no decay
    growth_per_s: float = 0.0  # linear growth of activity (pump)
    buy_share: float = 0.5
    avg_trade_usd: float = 50.0


@dataclass
class SimToken:
    """A token of the local market. ``fixed_pairs`` (when set) is served verbatim."""

    mint: str
    name: str
    symbol: str
    created_at: float
    fate: str
    pools: list[SimPool] = field(default_factory=list)
    fixed_pairs: list[dict[str, Any]] | None = None
    omitted: set[str] = field(default_factory=set)
    price0_usd: float = 5e-5
    price_drop: float = 0.0  # fade: share of the price lost over time
    price_tau_s: float = 600.0
    price_growth_per_s: float = 0.0
    die_after_s: float | None = None
    phase: float = 0.0
    description: str = ""

    def price_at(self, age: float) -> float:
        """USD price ``age`` seconds after creation."""
        age = max(0.0, age)
        if self.die_after_s is not None and age >= self.die_after_s:
            return self.price0_usd * 0.001
        price = self.price0_usd
        if self.price_growth_per_s:
            price *= 1.0 + self.price_growth_per_s * min(age, GROWTH_CAP_S)
        if self.price_drop:
            price *= 1.0 - self.price_drop * (1.0 - math.exp(-age / self.price_tau_s))
        return price * (1.0 + 0.02 * math.sin(age / 7.0 + self.phase))

    def is_dead_at(self, age: float) -> bool:
        return self.die_after_s is not None and age >= self.die_after_s


def _trades_between(pool: SimPool, token: SimToken, start: float, end: float) -> float:
    """Expected trade count in pool-age interval [start, end] (analytic integral)."""
    if token.die_after_s is not None:
        end = min(end, token.die_after_s - pool.appear_after_s)
    start = max(0.0, start)
    if end <= start:
        return 0.0
    if pool.rate_tau_s:
        tau = pool.rate_tau_s
        return pool.rate0 * tau * (math.exp(-start / tau) - math.exp(-end / tau))
    if pool.growth_per_s:
        cap = GROWTH_CAP_S
        g = pool.growth_per_s
        total = 0.0
        a, b = min(start, cap), min(end, cap)
        total += pool.rate0 * ((b - a) + g / 2.0 * (b * b - a * a))
        if end > cap:
            total += pool.rate0 * (1.0 + g * cap) * (end - max(start, cap))
        return total
    return pool.rate0 * (end - start)


def pool_pair(token: SimToken, pool: SimPool, now: float) -> dict[str, Any] | None:
    """The DexScreener pair object of ``pool`` at ``now``; None before it exists."""
    appeared = token.created_at + pool.appear_after_s
    age = now - appeared
    if age < 0:
        return None
    token_age = now - token.created_at
    price = token.price_at(token_age)
    quote_mint, quote_name, quote_usd = QUOTES.get(pool.quote, QUOTES["SOL"])
    dead = token.is_dead_at(token_age)
    if dead:
        liquidity = 0.4
    elif pool.dex_id in EXTERNAL_DEX_IDS:
        liquidity = pool.liquidity_usd * (1.0 - 0.35 * math.exp(-age / 10.0))
    else:
        liquidity = pool.liquidity_usd * math.sqrt(price / token.price0_usd)
    txns: dict[str, dict[str, int]] = {}
    volume: dict[str, float] = {}
    change: dict[str, float] = {}
    for key, window in WINDOWS_S.items():
        expected = _trades_between(pool, token, age - window, age)
        count = int(round(expected))
        buys = int(round(count * pool.buy_share))
        txns[key] = {"buys": buys, "sells": count - buys}
        volume[key] = round(expected * pool.avg_trade_usd * (price / token.price0_usd), 2)
        if window <= 3600.0 or age >= 3600.0:  # young pairs lack long-window price changes
            before = token.price_at(max(token_age - window, pool.appear_after_s))
            change[key] = round((price / before - 1.0) * 100.0, 2) if before else 0.0
    pair: dict[str, Any] = {
        "chainId": "solana",
        "dexId": pool.dex_id,
        "url": f"https://dexscreener.com/solana/{pool.pair_address.lower()}",
        "pairAddress": pool.pair_address,
        "baseToken": {"address": token.mint, "name": token.name, "symbol": token.symbol},
        "quoteToken": {"address": quote_mint, "name": quote_name, "symbol": pool.quote},
        "priceNative": decimal_str(price / quote_usd),
        "priceUsd": decimal_str(price),
        "txns": txns,
        "volume": volume,
        "priceChange": change,
        "liquidity": {
            "usd": round(liquidity, 2),
            "base": round(liquidity / 2.0 / price, 2),
            "quote": round(liquidity / 2.0 / quote_usd, 6),
        },
        "fdv": round(price * TOKEN_SUPPLY),
        "marketCap": round(price * TOKEN_SUPPLY),
        "pairCreatedAt": int(appeared * 1000),
    }
    return pair


class MarketModel:
    """Deterministic market state for the local DexScreener/PumpPortal.

    Example::

        model = MarketModel(seed=7, clock=ManualClock())
        model.add_token("Mint1pump", pairs=[{"dex_id": "raydium", "quote": "USDC", "liquidity_usd": 500}])
        model.omit_from_batch("Mint1pump", model.token_pairs("Mint1pump")[0]["pairAddress"])
        assert model.batch_pairs(["Mint1pump"]) == []

    ``seed`` drives everything random: mints come from one ``random.Random(seed)``
    stream, each token's parameters from its own ``Random(f"{seed}:{mint}")``, so
    adding tokens by hand never shifts the seeded sequence.
    """

    def __init__(
        self,
        seed: int = 42,
        clock: Clock | None = None,
        fate_weights: dict[str, float] | None = None,
        hostile_share: float = 0.2,
    ) -> None:
        self.seed = seed
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.hostile_share = hostile_share
        weights = dict(fate_weights or DEFAULT_FATE_WEIGHTS)
        unknown = set(weights) - set(FATES)
        if unknown or not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"fate_weights: use non-negative weights for {', '.join(FATES)}")
        self.fate_weights = weights
        self.tokens: dict[str, SimToken] = {}
        self._rng = random.Random(seed)
        self._pair_seq = 0

    # -- reading ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, mint: object) -> bool:
        return mint in self.tokens

    def get(self, mint: str) -> SimToken | None:
        return self.tokens.get(mint)

    def token_pairs(self, mint: str) -> list[dict[str, Any]]:
        """All pools of ``mint`` now (what ``/token-pairs/v1`` returns); [] if unknown."""
        token = self.tokens.get(mint)
        if token is None:
            return []
        if token.fixed_pairs is not None:
            return copy.deepcopy(token.fixed_pairs)
        now = self.clock.time()
        pairs = (pool_pair(token, pool, now) for pool in token.pools)
        return [pair for pair in pairs if pair is not None]

    def batch_pairs(self, mints: Iterable[str]) -> list[dict[str, Any]]:
        """Pairs for several mints, minus pools omitted from the batch endpoint."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for mint in mints:
            if mint in seen:
                continue
            seen.add(mint)
            token = self.tokens.get(mint)
            if token is None:
                continue
            out.extend(p for p in self.token_pairs(mint) if p.get("pairAddress") not in token.omitted)
        return out

    def recent(self, limit: int = 30) -> list[SimToken]:
        """The most recently added tokens, newest first."""
        return [self.tokens[m] for m in islice(reversed(self.tokens), limit)]

    # -- creating --------------------------------------------------------------
    def new_mint(self) -> str:
        """The next mint of the seeded stream (pump.fun style: ends in ``pump``)."""
        raw = self._rng.getrandbits(256).to_bytes(32, "big")
        return (b58encode(raw).rjust(44, "1"))[:40] + "pump"

    def spawn(self) -> SimToken:
        """A freshly migrated token with a seeded name and fate, created now."""
        mint = self.new_mint()
        rng = random.Random(f"{self.seed}:{mint}")
        fates = list(self.fate_weights)
        fate = rng.choices(fates, weights=[self.fate_weights[f] for f in fates])[0]
        name, symbol = NameGenerator(rng, self.hostile_share).next()
        return self._register(self._build(mint, name, symbol, fate, rng))

    def seed_tokens(self, n: int) -> list[str]:
        """Create ``n`` tracked tokens with evolving pools; returns their mints."""
        if n < 0:
            raise ValueError("n must be >= 0")
        return [self.spawn().mint for _ in range(n)]

    def add_token(
        self,
        mint: str,
        name: str | None = None,
        symbol: str | None = None,
        pairs: list[dict[str, Any]] | None = None,
        fate: str | None = None,
    ) -> SimToken:
        """Add (or replace) a token by hand.

        ``pairs=None`` gives evolving pools: fate ``steady`` unless ``fate`` says
        otherwise. ``pairs=[...]`` fixes the pools: each item is either a full pair
        object (has ``pairAddress``; served verbatim) or keyword arguments for
        ``make_pair`` (``{"dex_id": "raydium", "quote": "USDC", "liquidity_usd": 500}``).
        ``pairs=[]`` means DexScreener knows no pool for it.
        """
        if not isinstance(mint, str) or not mint:
            raise ValueError("mint must be a non-empty string")
        fate = fate or "steady"
        if fate not in FATES:
            raise ValueError(f"unknown fate {fate!r}; use one of {', '.join(FATES)}")
        rng = random.Random(f"{self.seed}:{mint}")
        gen_name, gen_symbol = NameGenerator(rng, hostile_share=0.0).next()
        token = self._build(mint, gen_name if name is None else name,
                            gen_symbol if symbol is None else symbol, fate, rng)
        self._register(token)
        if pairs is not None:
            built = [copy.deepcopy(p) if "pairAddress" in p else self.make_pair(mint, **p) for p in pairs]
            for pair in built:  # an explicit name/symbol wins over one baked into a ready pair
                base = pair.get("baseToken")
                if isinstance(base, dict) and base.get("address") == mint:
                    if name is not None:
                        base["name"] = name
                    if symbol is not None:
                        base["symbol"] = symbol
            self.set_pairs(mint, built)
        return token

    def set_pairs(self, mint: str, pairs: list[dict[str, Any]]) -> None:
        """Serve exactly these pair objects for ``mint`` from now on (adds the token if new)."""
        if not isinstance(pairs, list):
            raise TypeError("pairs must be a list of pair objects")
        if mint not in self.tokens:
            self.add_token(mint)
        self.tokens[mint].fixed_pairs = copy.deepcopy(pairs)

    def make_pair(
        self,
        mint: str,
        dex_id: str = "pumpswap",
        quote: str = "SOL",
        liquidity_usd: float = 1000.0,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A well-formed pair object for ``mint``; ``overrides`` replace top-level keys.

        Example: ``make_pair(m, "raydium", "USDC", 250.0, priceUsd="0.01", fdv=None)``.
        The pair is returned, not stored: pass it to ``set_pairs``.
        """
        token = self.tokens.get(mint)
        if token is None:
            rng = random.Random(f"{self.seed}:{mint}")
            name, symbol = NameGenerator(rng, hostile_share=0.0).next()
            token = SimToken(mint=mint, name=name, symbol=symbol,
                             created_at=self.clock.time(), fate="steady")
        self._pair_seq += 1
        pool = SimPool(
            pair_address=derive_address(self.seed, mint, dex_id, quote, self._pair_seq),
            dex_id=dex_id, quote=quote, appear_after_s=0.0, liquidity_usd=float(liquidity_usd),
            rate0=0.2, rate_tau_s=None,
        )
        frozen = SimToken(mint=token.mint, name=token.name, symbol=token.symbol,
                          created_at=self.clock.time() - 600.0, fate="steady",
                          price0_usd=token.price0_usd)
        pair = pool_pair(frozen, pool, self.clock.time())
        assert pair is not None
        pair["liquidity"]["usd"] = round(float(liquidity_usd), 2)
        pair.update(overrides)
        return pair

    def omit_from_batch(self, mint: str, pair_address: str) -> None:
        """Make the batch endpoints miss this pool; ``/token-pairs`` still returns it."""
        token = self.tokens.get(mint)
        if token is None:
            raise UnknownToken(mint)
        token.omitted.add(pair_address)

    def include_in_batch(self, mint: str, pair_address: str) -> None:
        """Undo ``omit_from_batch``."""
        token = self.tokens.get(mint)
        if token is not None:
            token.omitted.discard(pair_address)

    def remove_token(self, mint: str) -> None:
        """Forget a token: every endpoint stops returning it."""
        self.tokens.pop(mint, None)

    # -- internals -------------------------------------------------------------
    def _register(self, token: SimToken) -> SimToken:
        self.tokens.pop(token.mint, None)  # re-adding moves it to "most recent"
        self.tokens[token.mint] = token
        return token

    def _build(self, mint: str, name: str, symbol: str, fate: str, rng: random.Random) -> SimToken:
        now = self.clock.time()
        token = SimToken(
            mint=mint, name=name, symbol=symbol, created_at=now, fate=fate,
            price0_usd=rng.uniform(3e-5, 9e-5), phase=rng.uniform(0.0, 2 * math.pi),
            description=f"{name} on Solana. Community token, not financial advice.",
        )
        pump = SimPool(
            pair_address=derive_address(self.seed, mint, "pump"),
            dex_id="pumpswap" if rng.random() < 0.85 else "pumpfun-amm",
            quote="SOL", appear_after_s=0.0,
            liquidity_usd=rng.uniform(8_000.0, 30_000.0),
            rate0=rng.uniform(0.2, 2.0), rate_tau_s=rng.uniform(60.0, 900.0),
            buy_share=rng.uniform(0.45, 0.6), avg_trade_usd=rng.uniform(20.0, 300.0),
        )
        token.pools.append(pump)
        external_at: float | None = None
        external_liq = 0.0
        if fate == "steady":
            pump.dex_id, pump.rate_tau_s, pump.rate0, pump.liquidity_usd = "pumpswap", None, 0.5, 10_000.0
        elif fate == "fade":
            token.price_drop = rng.uniform(0.3, 0.6)
            token.price_tau_s = rng.uniform(120.0, 1200.0)
            if rng.random() < 0.15:  # a near miss: an external pool too thin to count
                external_at, external_liq = rng.uniform(5.0, 60.0), rng.uniform(20.0, 150.0)
        elif fate == "activate":
            pump.rate_tau_s = rng.uniform(600.0, 3600.0)
            external_at, external_liq = rng.uniform(5.0, 30.0), rng.uniform(350.0, 8_000.0)
        elif fate == "pump":
            pump.rate_tau_s = None
            pump.growth_per_s = rng.uniform(0.005, 0.03)
            pump.buy_share = rng.uniform(0.6, 0.72)
            token.price_growth_per_s = rng.uniform(0.003, 0.02)
            if rng.random() < 0.3:
                external_at, external_liq = rng.uniform(10.0, 120.0), rng.uniform(500.0, 20_000.0)
        elif fate == "die":
            pump.rate_tau_s = rng.uniform(120.0, 600.0)
            pump.buy_share = rng.uniform(0.3, 0.42)
            token.die_after_s = rng.uniform(15.0, 240.0)
        if external_at is not None:
            token.pools.append(SimPool(
                pair_address=derive_address(self.seed, mint, "external"),
                dex_id=rng.choice(EXTERNAL_DEX_IDS),
                quote="SOL" if rng.random() < 0.7 else "USDC",
                appear_after_s=external_at, liquidity_usd=external_liq,
                rate0=pump.rate0 * rng.uniform(0.1, 0.6), rate_tau_s=pump.rate_tau_s,
                growth_per_s=pump.growth_per_s, buy_share=pump.buy_share,
                avg_trade_usd=pump.avg_trade_usd,
            ))
        return token
