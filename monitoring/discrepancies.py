"""Cross-check the batch endpoint's pools against the per-token endpoint.

DexScreener's batch endpoint (``/tokens/v1``) sometimes misses pools, or reports stale
liquidity, that ``/token-pairs/v1`` has. When a check fails activation, the pipeline can
ask for the token's pools again one by one and compare:

- ``missing_pool``: the per-token endpoint has a pool the batch did not return;
- ``extra_pool``: the batch returned a pool the per-token endpoint does not know;
- ``liquidity_mismatch``: both have the pool but ``liquidity.usd`` differs by more than
  ``share`` (default ``DISCREPANCY_LIQUIDITY_SHARE``) of the per-token value, or only one
  of them reports a liquidity.

Each finding is stored as a ``PoolDiscrepancy`` row and counted in ``DiscrepancyStats``
(exported by the pipeline collector).

Every verification costs one DexScreener request (through the client's shared limiter), so
``PoolVerifier`` spends only a small, bounded share of the request budget: a token bucket on
the injected clock refills at ``budget_per_min`` (``DISCREPANCY_BUDGET_SHARE`` of the client
limiter's rate, 3 % = about 9/min at the defaults) and holds at most ``burst`` requests, and a
per-token cooldown keeps one token from taking it all. When the bucket runs low, only the most
useful cases are verified (*priority* cases, which may take the last request):

- the token is ``active`` (its failing check demotes it now: a batch that missed a pool would
  wrongly demote a good token), or
- a near miss: the best external pool's liquidity is under ``ACTIVATION_MIN_LIQUIDITY_USD``
  but at least ``near_miss_share`` of it (stale batch liquidity may be the whole difference).

Other failures (the common ``no_external_pool`` of a fresh token) are verified only while
more than ``priority_reserve`` requests are left, so they never starve the priority cases::

    verifier = PoolVerifier.from_settings(client, db, settings, clock=clock, rules=rules)
    report = await verifier.verify(token, batch_pairs, now)      # None: cooling down or no budget
    report.found            # [Discrepancy(kind="missing_pool", pair_address="P2", ...)]
    report.single_pairs     # the per-token endpoint's pools, to re-evaluate with

or, without the cooldown, ``await verify_pools(client, db, token, batch_pairs, now)``.
A fetch failure is reported in ``report.error`` and counted, never raised.
"""
from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from tokens.activation import ActivationRules
from tokens.models import PoolDiscrepancy
from tokens.pairs import Pair

log = logging.getLogger(__name__)

MISSING_POOL = "missing_pool"
EXTRA_POOL = "extra_pool"
LIQUIDITY_MISMATCH = "liquidity_mismatch"
KINDS = (MISSING_POOL, EXTRA_POOL, LIQUIDITY_MISMATCH)
MAX_ADDRESS_CHARS = 128


@dataclass(frozen=True)
class Discrepancy:
    kind: str
    pair_address: str
    batch_value: float | None = None
    single_value: float | None = None


@dataclass
class DiscrepancyReport:
    token_id: int
    mint: str
    found: list[Discrepancy] = field(default_factory=list)
    single_pairs: list[Any] = field(default_factory=list)
    error: str | None = None


@dataclass
class DiscrepancyStats:
    """Counters since start: verifications run, findings by kind, fetch errors."""

    verifications: int = 0
    errors: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    skipped_budget: int = 0  # declined for lack of budget (no request made)
    priority: int = 0  # verifications of priority cases (active tokens, near misses)


def _liquidity(pair: Any) -> float | None:
    value = getattr(pair, "liquidity_usd", None)
    return None if value is None else float(value)


def _by_address(pairs: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        address = getattr(pair, "pair_address", None)
        if isinstance(address, str) and address:
            out.setdefault(address[:MAX_ADDRESS_CHARS], pair)
    return out


def compare_pools(batch_pairs: Sequence[Any], single_pairs: Sequence[Any], share: float) -> list[Discrepancy]:
    """Pure comparison of the two endpoints' pools (``Pair`` objects), sorted by kind then address."""
    batch, single = _by_address(batch_pairs), _by_address(single_pairs)
    found: list[Discrepancy] = []
    for address, pair in single.items():
        if address not in batch:
            found.append(Discrepancy(MISSING_POOL, address, None, _liquidity(pair)))
    for address, pair in batch.items():
        if address not in single:
            found.append(Discrepancy(EXTRA_POOL, address, _liquidity(pair), None))
            continue
        b, s = _liquidity(pair), _liquidity(single[address])
        if b is None and s is None:
            continue
        if b is None or s is None or abs(b - s) > share * abs(s) or (s == 0 and b != 0):
            found.append(Discrepancy(LIQUIDITY_MISMATCH, address, b, s))
    return sorted(found, key=lambda d: (KINDS.index(d.kind), d.pair_address))


async def verify_pools(client: Any, db: Database, token: Any, batch_pairs: Sequence[Any], now: float, *,
                       share: float = 0.2, stats: DiscrepancyStats | None = None) -> DiscrepancyReport:
    """Fetch ``token``'s pools from the per-token endpoint, compare, store and count findings.

    ``token`` needs ``id`` and ``mint`` (a ``Token`` row). ``client.fetch_token_pairs(mint)``
    returns ``(pairs, skipped)`` as ``tokens.dexscreener.DexScreenerClient`` does.
    """
    stats = stats if stats is not None else DiscrepancyStats()
    report = DiscrepancyReport(int(token.id), str(token.mint))
    stats.verifications += 1
    try:
        outcome = await client.fetch_token_pairs(report.mint)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed cross-check is reported, not raised
        stats.errors += 1
        report.error = f"{type(exc).__name__}: {exc}"[:300]
        return report
    single = outcome[0] if isinstance(outcome, tuple) else outcome
    report.single_pairs = list(single or [])
    report.found = compare_pools(list(batch_pairs or []), report.single_pairs, share)
    if report.found:

        async def _store(session) -> None:  # fresh rows on every attempt: db.run may retry
            session.add_all([
                PoolDiscrepancy(token_id=report.token_id, at=now, kind=d.kind, pair_address=d.pair_address,
                                batch_value=d.batch_value, single_value=d.single_value)
                for d in report.found
            ])

        await db.run(_store)
        stats.by_kind.update(d.kind for d in report.found)
    return report


BudgetSource = float | Callable[[], float]


class PoolVerifier:
    """``verify_pools`` with shared counters, a per-token cooldown and a global request budget
    (see the module docstring).

        verifier = PoolVerifier(client, db, budget_per_min=9.0, clock=clock,
                                rules=ActivationRules(min_liquidity_usd=200.0))
        processor.failure_listeners.append(verifier.verify)
        verifier.stats.verifications, verifier.stats.skipped_budget

    ``budget_per_min`` is a rate or a callable returning the current one (e.g. a share of the
    limiter's rate, so the budget shrinks when recovery slows the limiter); ``None`` means no
    global budget (the cooldown alone). Without ``rules`` only ``active`` tokens are priority.
    """

    def __init__(self, client: Any, db: Database, *, share: float = 0.2, cooldown_s: float = 600.0,
                 max_tracked: int = 50_000, budget_per_min: BudgetSource | None = None, burst: float = 3.0,
                 priority_reserve: float = 1.0, near_miss_share: float = 0.5, rules: ActivationRules | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.client = client
        self.db = db
        self.share = share
        self.cooldown_s = cooldown_s
        self.max_tracked = max_tracked
        self.budget_per_min = budget_per_min
        self.burst = max(1.0, float(burst))
        self.priority_reserve = max(0.0, min(float(priority_reserve), self.burst - 1.0))
        self.near_miss_share = near_miss_share
        self.rules = rules
        self.clock = clock
        self.stats = DiscrepancyStats()
        self._last: dict[int, float] = {}
        self._tokens = self.burst
        self._refilled_at = clock.monotonic()

    @classmethod
    def from_settings(cls, client: Any, db: Database, settings: Any, **kw: Any) -> "PoolVerifier":
        """Budget: ``DISCREPANCY_BUDGET_SHARE`` of the client limiter's current rate (of
        ``effective_api_rate_per_min`` when the client has no limiter)."""
        share = float(settings.discrepancy_budget_share)
        limiter = getattr(client, "limiter", None)
        if limiter is not None and hasattr(limiter, "rate_per_min"):
            budget: BudgetSource = lambda: share * float(limiter.rate_per_min)  # noqa: E731
        else:
            budget = share * float(settings.effective_api_rate_per_min)
        kw.setdefault("budget_per_min", budget)
        kw.setdefault("rules", ActivationRules.from_settings(settings))
        return cls(client, db, share=float(settings.discrepancy_liquidity_share), **kw)

    def rate_per_min(self) -> float | None:
        """The current global budget in verifications per minute (``None``: unlimited)."""
        budget = self.budget_per_min
        if budget is None:
            return None
        value = float(budget() if callable(budget) else budget)
        return value if math.isfinite(value) and value > 0 else 0.0

    def is_priority(self, token: Any, batch_pairs: Sequence[Any]) -> bool:
        """An ``active`` token, or a near miss on external liquidity (needs ``rules``)."""
        if getattr(token, "status", None) == "active":
            return True
        if self.rules is None:
            return False
        floor = self.rules.min_liquidity_usd
        best = max((p.liquidity_usd for p in batch_pairs or ()
                    if isinstance(p, Pair) and self.rules.is_external_pool(p) and p.liquidity_usd is not None),
                   default=None)
        return best is not None and floor > 0 and self.near_miss_share * floor <= best < floor

    def _take(self, priority: bool) -> bool:
        """Take one request from the bucket if this case may have it."""
        rate = self.rate_per_min()
        if rate is None:
            return True
        now = self.clock.monotonic()
        elapsed = max(0.0, now - self._refilled_at)
        self._refilled_at = now
        self._tokens = min(self.burst, self._tokens + elapsed * rate / 60.0)
        needed = 1.0 if priority else 1.0 + self.priority_reserve
        if self._tokens < needed:
            return False
        self._tokens -= 1.0
        return True

    async def verify(self, token: Any, batch_pairs: Sequence[Any], now: float) -> DiscrepancyReport | None:
        """Cross-check unless this token was checked less than ``cooldown_s`` ago or the budget
        has no request left for this case (then ``None``, without a request)."""
        token_id = int(token.id)
        last = self._last.get(token_id)
        if last is not None and now - last < self.cooldown_s:
            return None
        priority = self.is_priority(token, batch_pairs)
        if not self._take(priority):
            self.stats.skipped_budget += 1
            return None
        if len(self._last) >= self.max_tracked:
            cutoff = now - self.cooldown_s
            self._last = {k: v for k, v in self._last.items() if v >= cutoff}
        self._last[token_id] = now
        if priority:
            self.stats.priority += 1
        return await verify_pools(self.client, self.db, token, batch_pairs, now, share=self.share, stats=self.stats)


async def discrepancy_counts(session: Any, now: float, window_s: float = 3600.0) -> dict[str, int]:
    """Stored discrepancies by kind over ``(now - window_s, now]`` (``pool_discrepancies(at)`` index)."""
    from sqlalchemy import text

    from monitoring.pipeline.sql import run

    rows = (await run(session, text(
        "SELECT kind, COUNT(*) FROM pool_discrepancies WHERE at > :since AND at <= :now GROUP BY kind"),
        {"since": now - window_s, "now": now})).all()
    return {str(kind): int(n) for kind, n in rows}
