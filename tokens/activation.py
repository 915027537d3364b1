"""The activation rule: when a monitored token becomes ``active``.

Default rule (all thresholds from settings)::

    (a pump.fun-family pool            -- dexId in PUMP_DEX_IDS, quote in PUMP_QUOTE_SYMBOLS
     AND >= 1 liquid external pool)     -- any other dexId, quote in EXTERNAL_QUOTE_SYMBOLS,
                                           liquidity.usd >= ACTIVATION_MIN_LIQUIDITY_USD
    OR >= 2 liquid external pools

Every condition is evaluated and recorded (no short-circuit), each with the observed
value and the threshold, so ``/token`` can show exactly why a token is or is not active.
Conditions, in order (the first failing one is the *primary* failure):

==================== ========================== ============================================
condition            failure code               passes when
==================== ========================== ============================================
``data_fresh``       ``stale_data``             now - fetched_at <= STALE_DATA_S
``pairs_well_formed`` ``malformed_pairs``       no pair was malformed, or >= 1 pair is usable
``pairs_present``    ``no_pairs``               >= 1 usable pair
``pump_pool``        ``no_pump_pool``           >= 1 pump pool (or >= 2 liquid external pools)
``external_pool``    ``no_external_pool``       external pools >= required (1 with a pump pool, else 2)
``external_liquidity`` ``insufficient_liquidity`` liquid external pools >= required
==================== ========================== ============================================

``external_liquidity`` is recorded in US dollars: its observed value is the liquidity of the
external pool that has to clear the floor -- the best external pool's ``liquidity.usd`` (with
a pump pool, the usual case), else the second best when two liquid external pools are needed
(a missing pool or liquidity counts as $0) -- and its threshold is
``ACTIVATION_MIN_LIQUIDITY_USD``. It passes exactly when ``observed >= threshold`` (that pool
and every better one are liquid); the count of liquid pools is in its detail text. The pool
counts are in ``external_pool``. Checks stored before this change recorded a count against
a count threshold here.

Usage::

    rules = ActivationRules.from_settings(settings)
    result = evaluate(pairs, rules, now=clock.time(), fetched_at=fetched_at)
    result.passed, result.failure_codes, [c.to_dict() for c in result.conditions]

``pairs`` may hold ``Pair`` objects or raw DexScreener dicts (parsed here; unusable ones
count as malformed). Pairs whose base token is another mint are ignored when ``mint`` is given.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokens.pairs import MalformedPair, Pair, parse_pair

# Stable failure codes (shown to operators, stored in checks, used as demotion reasons).
STALE_DATA = "stale_data"
MALFORMED_PAIRS = "malformed_pairs"
NO_PAIRS = "no_pairs"
NO_PUMP_POOL = "no_pump_pool"
NO_EXTERNAL_POOL = "no_external_pool"
INSUFFICIENT_LIQUIDITY = "insufficient_liquidity"
FAILURE_CODES = (STALE_DATA, MALFORMED_PAIRS, NO_PAIRS, NO_PUMP_POOL, NO_EXTERNAL_POOL, INSUFFICIENT_LIQUIDITY)

JsonValue = float | int | str | bool | None


@dataclass(frozen=True)
class ActivationRules:
    """Thresholds of the activation rule.

        rules = ActivationRules(min_liquidity_usd=500.0)
        rules = ActivationRules.from_settings(settings)
    """

    min_liquidity_usd: float = 200.0
    pump_dex_ids: frozenset[str] = frozenset({"pumpfun-amm", "pumpfun", "pumpswap"})
    pump_quote_symbols: frozenset[str] = frozenset({"SOL"})
    external_quote_symbols: frozenset[str] = frozenset({"SOL", "USDC"})
    stale_data_s: float = 600.0
    external_pools_alone: int = 2  # liquid external pools that activate without a pump pool

    @classmethod
    def from_settings(cls, settings: Any) -> "ActivationRules":
        return cls(
            min_liquidity_usd=float(settings.activation_min_liquidity_usd),
            pump_dex_ids=frozenset(d.lower() for d in settings.pump_dex_ids),
            pump_quote_symbols=frozenset(s.upper() for s in settings.pump_quote_symbols),
            external_quote_symbols=frozenset(s.upper() for s in settings.external_quote_symbols),
            stale_data_s=float(settings.stale_data_s),
        )

    def is_pump_pool(self, pair: Pair) -> bool:
        return pair.dex_id.lower() in self.pump_dex_ids and (pair.quote_symbol or "").upper() in self.pump_quote_symbols

    def is_external_pool(self, pair: Pair) -> bool:
        return (
            pair.dex_id.lower() not in self.pump_dex_ids
            and (pair.quote_symbol or "").upper() in self.external_quote_symbols
        )

    def is_liquid(self, pair: Pair) -> bool:
        return pair.liquidity_usd is not None and pair.liquidity_usd >= self.min_liquidity_usd


@dataclass(frozen=True)
class ConditionResult:
    """One evaluated condition. ``observed``/``threshold`` are JSON scalars."""

    name: str
    observed: JsonValue
    threshold: JsonValue
    passed: bool
    code: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        # Fields are JSON scalars: a plain dict, not ``dataclasses.asdict`` (its deep copy cost ~10% of a check).
        return {"name": self.name, "observed": self.observed, "threshold": self.threshold, "passed": self.passed,
                "code": self.code, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ConditionResult":
        return cls(
            name=str(data.get("name", "")),
            observed=data.get("observed"),
            threshold=data.get("threshold"),
            passed=bool(data.get("passed", False)),
            code=str(data.get("code", "")),
            detail=str(data.get("detail", "")),
        )


@dataclass(frozen=True)
class ActivationResult:
    passed: bool
    conditions: list[ConditionResult]
    failure_codes: list[str]
    pairs: list[Pair] = field(default_factory=list)
    malformed: int = 0

    @property
    def primary_failure(self) -> str | None:
        return self.failure_codes[0] if self.failure_codes else None

    def conditions_json(self) -> str:
        return json.dumps([c.to_dict() for c in self.conditions], ensure_ascii=False)


def _usd(value: float) -> float | None:
    """A dollar figure as a JSON-safe float (a non-finite value, which JSON cannot hold, becomes ``None``).
    Not rounded: $199.999 must not read as $200 on a failing check."""
    out = float(value)
    return out if math.isfinite(out) else None


def _split(pairs: Iterable[Pair | Mapping[str, Any] | object], mint: str | None) -> tuple[list[Pair], int]:
    usable: list[Pair] = []
    malformed = 0
    for item in pairs:
        if isinstance(item, Pair):
            pair = item
        else:
            try:
                pair = parse_pair(item)
            except MalformedPair:
                malformed += 1
                continue
        if mint is not None and pair.base_address != mint:
            continue
        usable.append(pair)
    return usable, malformed


def evaluate(
    pairs: Iterable[Pair | Mapping[str, Any] | object],
    rules: ActivationRules,
    now: float,
    fetched_at: float,
    *,
    malformed: int = 0,
    mint: str | None = None,
) -> ActivationResult:
    """Evaluate every condition. ``malformed`` adds pairs already skipped upstream."""
    usable, bad = _split(pairs, mint)
    malformed += bad
    pump = [p for p in usable if rules.is_pump_pool(p)]
    external = [p for p in usable if rules.is_external_pool(p)]
    liquid_external = [p for p in external if rules.is_liquid(p)]
    has_pump = bool(pump)
    required_external = 1 if has_pump else rules.external_pools_alone
    ranked_liq = sorted((p.liquidity_usd or 0.0 for p in external), reverse=True)
    best_liq = ranked_liq[0] if ranked_liq else 0.0
    # The liquidity of the weakest pool among the ``required_external`` best: the one that must clear the floor.
    rank = max(1, required_external)
    deciding_liq = ranked_liq[rank - 1] if len(ranked_liq) >= rank else 0.0
    deciding = "best external pool" if rank == 1 else f"#{rank} best external pool"
    age = max(0.0, now - fetched_at)

    conditions = [
        ConditionResult("data_fresh", round(age, 3), rules.stale_data_s, age <= rules.stale_data_s, STALE_DATA,
                        "seconds since the pool data was fetched"),
        ConditionResult("pairs_well_formed", malformed, 0, malformed == 0 or bool(usable), MALFORMED_PAIRS,
                        "malformed pairs (fails only when no pair is usable)"),
        ConditionResult("pairs_present", len(usable), 1, bool(usable), NO_PAIRS, "usable pairs"),
        ConditionResult("pump_pool", len(pump), 1, has_pump or len(liquid_external) >= rules.external_pools_alone,
                        NO_PUMP_POOL, f"pump pools (optional with >= {rules.external_pools_alone} liquid external pools)"),
        ConditionResult("external_pool", len(external), required_external, len(external) >= required_external,
                        NO_EXTERNAL_POOL, "external pools with an accepted quote"),
        ConditionResult("external_liquidity", _usd(deciding_liq), _usd(rules.min_liquidity_usd),
                        len(liquid_external) >= required_external, INSUFFICIENT_LIQUIDITY,
                        f"liquidity USD of the {deciding} ({len(liquid_external)} of {required_external} needed "
                        f"with >= ${rules.min_liquidity_usd:g}; best ${best_liq:,.0f})"),
    ]
    failure_codes = [c.code for c in conditions if not c.passed]
    return ActivationResult(not failure_codes, conditions, failure_codes, usable, malformed)


def parse_conditions(raw: str | None) -> list[dict[str, Any]] | None:
    """The stored conditions of a check (``ActivationResult.conditions_json``) as dicts; ``[]``
    for none, ``None`` when the stored text is malformed (junk, or nested too deep to parse)."""
    if raw is None:
        return []
    try:
        data = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return None
    if isinstance(data, dict):
        data = data.get("conditions")
    if not isinstance(data, list):
        return None
    return [item for item in data if isinstance(item, dict)]
