"""Parse DexScreener pair objects into frozen ``Pair`` values.

DexScreener pairs are loosely typed: any field may be missing, ``null`` or of the wrong
type (prices are strings, ``liquidity`` is optional, ``txns`` windows come and go). This
module never raises on junk: a pair that cannot be used is *skipped with a reason*, and
the caller counts the reason.

    pair = parse_pair(raw)                       # raises MalformedPair("no_pair_address")
    pairs, skipped = parse_pairs(raw_list)       # skipped: Counter[reason]

Skip reasons (stable strings): ``not_an_object``, ``no_pair_address``, ``no_base_address``,
``wrong_chain``, ``no_dex_id``.

Every string taken from a pair (names, symbols, dex id, labels, addresses) goes through
``tokens.text.clean_text``, the one cleaner of untrusted text: encodable, no control or
bidi characters, at most ``MAX_TEXT_CHARS``; otherwise stored as given, escaped at render time.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.numbers import finite_float as to_float
from tokens.text import MAX_TEXT_CHARS, clean_text

MAX_COUNT = 10**15  # no pool trades this often; anything above is junk, clamped
CHAIN = "solana"
WINDOWS = ("m5", "h1", "h6", "h24")


class MalformedPair(ValueError):
    """A pair that cannot be used; ``reason`` is a stable, countable string."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def to_count(value: object) -> int:
    """A non-negative int from junk, at most ``MAX_COUNT``; anything unusable is 0.

    The cap keeps sums and ratios of counts (scoring) within float range whatever the API says.
    """
    num = to_float(value)
    if num is None or num < 0:
        return 0
    return min(int(num), MAX_COUNT)


@dataclass(frozen=True)
class TxnCounts:
    buys: int = 0
    sells: int = 0

    @property
    def total(self) -> int:
        return self.buys + self.sells


@dataclass(frozen=True)
class Pair:
    """One pool, normalised. Windowed stats are keyed by ``m5``/``h1``/``h6``/``h24``.

        pair = parse_pair({"chainId": "solana", "dexId": "pumpswap", "pairAddress": "P1",
                           "baseToken": {"address": "Mint1"}, "quoteToken": {"symbol": "SOL"},
                           "liquidity": {"usd": 1500}})
        pair.liquidity_usd  # 1500.0
    """

    pair_address: str
    chain_id: str
    dex_id: str
    base_address: str
    base_name: str | None = None
    base_symbol: str | None = None
    quote_address: str | None = None
    quote_symbol: str | None = None
    price_usd: float | None = None
    liquidity_usd: float | None = None
    fdv: float | None = None
    market_cap: float | None = None
    pair_created_at: float | None = None  # epoch seconds (DexScreener gives ms)
    txns: tuple[tuple[str, TxnCounts], ...] = field(default_factory=tuple)
    volume: tuple[tuple[str, float], ...] = field(default_factory=tuple)
    labels: tuple[str, ...] = field(default_factory=tuple)

    def txns_in(self, window: str) -> TxnCounts:
        return dict(self.txns).get(window, TxnCounts())

    def volume_in(self, window: str) -> float:
        return dict(self.volume).get(window, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (used in check details and /token)."""
        return {
            "pair_address": self.pair_address,
            "dex_id": self.dex_id,
            "quote_symbol": self.quote_symbol,
            "liquidity_usd": self.liquidity_usd,
            "price_usd": self.price_usd,
            "pair_created_at": self.pair_created_at,
        }


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _address(value: object) -> str | None:
    return clean_text(value, 128)


def parse_pair(raw: object, *, chain: str = CHAIN) -> Pair:
    """Parse one pair dict; raises ``MalformedPair(reason)`` when it cannot be used."""
    if not isinstance(raw, Mapping):
        raise MalformedPair("not_an_object")
    pair_address = _address(raw.get("pairAddress"))
    if pair_address is None:
        raise MalformedPair("no_pair_address")
    base = _obj(raw.get("baseToken"))
    base_address = _address(base.get("address"))
    if base_address is None:
        raise MalformedPair("no_base_address")
    chain_id = raw.get("chainId")
    if chain_id is not None and chain_id != chain:
        raise MalformedPair("wrong_chain")
    dex_id = clean_text(raw.get("dexId"), 64)
    if dex_id is None:
        raise MalformedPair("no_dex_id")
    quote = _obj(raw.get("quoteToken"))
    liquidity = _obj(raw.get("liquidity"))
    created_ms = to_float(raw.get("pairCreatedAt"))
    txns_raw = _obj(raw.get("txns"))
    volume_raw = _obj(raw.get("volume"))
    txns = tuple(
        (w, TxnCounts(to_count(_obj(txns_raw.get(w)).get("buys")), to_count(_obj(txns_raw.get(w)).get("sells"))))
        for w in WINDOWS
        if isinstance(txns_raw.get(w), Mapping)
    )
    volume = tuple(
        (w, max(0.0, v)) for w in WINDOWS if (v := to_float(volume_raw.get(w))) is not None
    )
    labels_raw = raw.get("labels")
    labels = tuple(clean_text(x, 32) or "" for x in labels_raw if isinstance(x, str)) if isinstance(labels_raw, list) else ()
    liquidity_usd = to_float(liquidity.get("usd"))
    return Pair(
        pair_address=pair_address,
        chain_id=chain,
        dex_id=dex_id.lower(),
        base_address=base_address,
        base_name=clean_text(base.get("name")),
        base_symbol=clean_text(base.get("symbol")),
        quote_address=_address(quote.get("address")),
        quote_symbol=clean_text(quote.get("symbol"), 32),
        price_usd=to_float(raw.get("priceUsd")),
        liquidity_usd=max(0.0, liquidity_usd) if liquidity_usd is not None else None,
        fdv=to_float(raw.get("fdv")),
        market_cap=to_float(raw.get("marketCap")),
        pair_created_at=created_ms / 1000.0 if created_ms is not None and created_ms > 0 else None,
        txns=txns,
        volume=volume,
        labels=labels,
    )


def parse_pairs(raw: Iterable[object], *, chain: str = CHAIN) -> tuple[list[Pair], Counter[str]]:
    """Parse many pairs; malformed ones are skipped and counted by reason."""
    pairs: list[Pair] = []
    skipped: Counter[str] = Counter()
    for item in raw:
        try:
            pairs.append(parse_pair(item, chain=chain))
        except MalformedPair as exc:
            skipped[exc.reason] += 1
    return pairs, skipped
