"""Why activation checks fail: counts by reason over 1 h and 24 h, and a recommendation.

A *failure* is a check on a token in ``monitoring`` that did not pass. Its reason is the
check's ``primary_failure``; a check whose pool data could not be fetched (``ok`` false)
without a code counts as ``fetch_error``. ``by_code`` counts every code in
``failure_codes`` (a check failing two conditions counts once for each).

The recommendation looks at the top reason of the shortest window that has failures,
reads the conditions JSON of its most recent failing checks (at most ``sample_limit``)
and compares the condition's observed values with its threshold. For
``insufficient_liquidity`` that is the ``external_liquidity`` condition, recorded by
``tokens.activation.evaluate`` in dollars (the deciding external pool's liquidity against
``ACTIVATION_MIN_LIQUIDITY_USD``). Only samples measured against the most recent sample's
threshold are summarised, so checks stored under an older floor (or the older count-based
form of the condition) never mix into the median::

    async with db.session() as s:
        stats = await failure_stats(s, now)
    stats.windows["1h"].by_reason[0]          # FailureCount(reason="insufficient_liquidity", count=41, share=0.82)
    stats.recommendation
    # "most failures (82%) are insufficient_liquidity just under the $200 threshold:
    #  median external liquidity $180 — consider whether $200 is the right floor"

Malformed conditions JSON is skipped and counted in ``FailureStats.malformed_conditions``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.numbers import finite_float
from app.percentiles import median
from monitoring.pipeline.sql import run
from tokens.activation import parse_conditions
from tokens.check_rollup import window_counts
from tokens.models import MONITORING

FETCH_ERROR = "fetch_error"
UNSPECIFIED = "unspecified"
DEFAULT_WINDOWS: tuple[tuple[str, float], ...] = (("1h", 3600.0), ("24h", 86400.0))


@dataclass(frozen=True)
class FailureCount:
    reason: str
    count: int
    share: float  # of the window's failed checks


@dataclass(frozen=True)
class FailureWindow:
    label: str
    window_s: float
    checks: int = 0
    failed: int = 0
    by_reason: list[FailureCount] = field(default_factory=list)
    by_code: list[FailureCount] = field(default_factory=list)
    fetch_failed: int = 0  # checks whose pool data could not be fetched (``ok`` false)

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.checks if self.checks else None

    @property
    def fetch_failure_rate(self) -> float | None:
        """Share of the window's checks that failed to fetch; ``None`` without checks."""
        return self.fetch_failed / self.checks if self.checks else None


@dataclass(frozen=True)
class ConditionSummary:
    """Observed values of one failing condition across the sampled checks."""

    condition: str
    samples: int
    median_observed: float
    threshold: float


@dataclass(frozen=True)
class FailureStats:
    windows: dict[str, FailureWindow]
    recommendation: str | None = None
    top_condition: ConditionSummary | None = None
    malformed_conditions: int = 0


_WHERE = "FROM checks WHERE at > :since AND at <= :now AND status_at_check = 'monitoring'"
# Outcome groups come from the per-minute counts (tokens.check_rollup.window_counts: ~10 rows a
# minute whatever the check rate); only the codes (on request) and the samples read ``checks``.
_BY_CODES = text(f"SELECT failure_codes, COUNT(*) {_WHERE} AND NOT passed GROUP BY failure_codes")
_SAMPLES = text(
    f"SELECT conditions {_WHERE} AND NOT passed AND primary_failure = :reason AND conditions IS NOT NULL "
    "ORDER BY at DESC LIMIT :limit"
)


def _ranked(counts: dict[str, int], failed: int) -> list[FailureCount]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [FailureCount(reason, n, n / failed if failed else 0.0) for reason, n in ordered]


def split_codes(codes: str | None) -> list[str]:
    """``"a,b; c"`` -> ``["a", "b", "c"]``; empty or NULL -> ``[]``."""
    if not codes:
        return []
    return [part.strip() for part in str(codes).replace(";", ",").split(",") if part.strip()]


async def failure_window(session: AsyncSession, now: float, label: str, window_s: float, *,
                         with_codes: bool = True) -> FailureWindow:
    """Failure counts by reason (and, with ``with_codes``, by code) over ``(now - window_s, now]``."""
    binds = {"since": now - window_s, "now": now}
    checks = failed = fetch_failed = 0
    reasons: dict[str, int] = {}
    outcomes = await window_counts(session, now - window_s, now, by=("passed", "ok", "reason"), status=MONITORING)
    for (passed, ok, primary), count in sorted(outcomes.items()):
        n = round(count)
        if n <= 0:
            continue
        checks += n
        if not ok:
            fetch_failed += n
        if passed:
            continue
        failed += n
        reason = str(primary) if primary else (UNSPECIFIED if ok else FETCH_ERROR)
        reasons[reason] = reasons.get(reason, 0) + n
    codes: dict[str, int] = {}
    if with_codes:
        for raw, n in (await run(session, _BY_CODES, binds)).all():
            for code in split_codes(raw):
                codes[code] = codes.get(code, 0) + int(n)
    return FailureWindow(label, float(window_s), checks, failed, _ranked(reasons, failed), _ranked(codes, failed),
                         fetch_failed)




def _matches(cond: dict[str, Any], reason: str) -> bool:
    return not cond.get("passed", False) and (cond.get("code") == reason or cond.get("name") == reason)


def _money(name: str) -> bool:
    lowered = name.lower()
    return "liquidity" in lowered or "usd" in lowered or "volume" in lowered or "cap" in lowered


def _fmt(value: float, money: bool) -> str:
    text_value = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"${text_value}" if money else text_value


# Failure reasons that no threshold decides: the advice says what they mean instead of
# comparing a pool count with its minimum of one.
NOT_A_THRESHOLD = {
    "no_external_pool": "no pool outside the pump.fun family yet; a market condition, not a threshold to tune",
    "no_pump_pool": "no pump.fun-family pool with an accepted quote; check PUMP_DEX_IDS and PUMP_QUOTE_SYMBOLS",
    "no_pairs": "DexScreener lists no pools for them yet",
    "stale_data": "pool data older than STALE_DATA_S; look at fetch latency and the due-queue lag",
}


def fetching_now_hint(recent: Any, fetch_failing: bool = False, share: float = 0.2) -> str | None:
    """The hint when fetches fail NOW (pure, see ``failure_stats``'s ``recent``), else ``None``."""
    failed = finite_float(getattr(recent, "failed", None)) or 0.0
    ok = finite_float(getattr(recent, "ok", None)) or 0.0
    window = finite_float(getattr(recent, "window_s", None))
    total = ok + failed
    if not fetch_failing and (total <= 0 or failed / total < share):
        return None
    span = "" if window is None else f" in the last {window / 60:g} min"
    figures = f"{failed / total:.0%} of checks{span} failed to fetch pool data" if total > 0 else \
        "no successful fetch recently"
    return (f"fetches are failing now ({figures}): look at the DexScreener client (outage, timeouts, "
            "rate limit); while they fail, failure reasons say nothing about the tokens")


async def failure_stats(
    session: AsyncSession,
    now: float,
    *,
    windows: tuple[tuple[str, float], ...] = DEFAULT_WINDOWS,
    sample_limit: int = 500,
    min_samples: int = 3,
    near_share: float = 0.25,
    codes_windows: tuple[str, ...] = ("1h",),
    fetch_alert_share: float = 0.2,
    recent: Any = None,
    fetch_failing: bool = False,
) -> FailureStats:
    """Failure counts per window and, where the data supports one, a recommendation.

    "Just under" means the median observed value is below the threshold by at most
    ``near_share`` of it (default 25 %: $150..$200 for a $200 floor). Counting by code
    reads every failing row, so it is done only for the windows in ``codes_windows``.

    Fetch failures come first: when at least ``fetch_alert_share`` (default 20 %) of the
    basis window's checks failed to fetch pool data, the advice is about fetching, even if
    another reason is more common (a market outage must not read as a market condition).

    ``recent`` (a ``tokens.queries.CheckRates`` over the rate window) and ``fetch_failing`` (the
    stall judged at the fetch stage) describe fetching NOW: when every fetch fails now, or at
    least ``fetch_alert_share`` of the recent checks failed to fetch, the hint is about fetching
    whatever the longer windows say, so a fresh outage never reads as a token condition.
    """
    result = {
        label: await failure_window(session, now, label, seconds, with_codes=label in codes_windows)
        for label, seconds in windows
    }
    now_hint = fetching_now_hint(recent, fetch_failing, fetch_alert_share)
    if now_hint is not None:
        return FailureStats(result, now_hint)
    basis = next((w for w in result.values() if w.failed), None)
    if basis is None:
        return FailureStats(result)
    top = basis.by_reason[0]
    fetch_rate = basis.fetch_failure_rate
    if top.reason != FETCH_ERROR and fetch_rate is not None and fetch_rate >= fetch_alert_share:
        return FailureStats(
            result,
            f"{fetch_rate:.0%} of checks (last {basis.label}: {basis.fetch_failed} of {basis.checks}) failed to "
            "fetch pool data: look at the DexScreener client (outage, timeouts, rate limit) before reading "
            f"the other failures (top: {top.reason} {top.share:.0%})",
        )
    if top.reason == FETCH_ERROR:
        return FailureStats(
            result,
            f"most failures ({top.share:.0%}, last {basis.label}) are fetch errors, not token conditions: "
            "look at the DexScreener client (timeouts, rate limit) before the activation rules",
        )
    rows = (
        await run(session, 
            _SAMPLES, {"since": now - basis.window_s, "now": now, "reason": top.reason, "limit": sample_limit}
        )
    ).all()
    observed: list[float] = []
    thresholds: list[float] = []
    cond_name: str | None = None
    malformed = 0
    for (raw,) in rows:
        conditions = parse_conditions(raw)
        if conditions is None:
            malformed += 1
            continue
        for cond in conditions:
            if not _matches(cond, top.reason):
                continue
            obs, thr = finite_float(cond.get("observed")), finite_float(cond.get("threshold"))
            name = str(cond.get("name") or top.reason)
            if obs is None or thr is None:
                continue
            if cond_name is not None and (name != cond_name or thr != thresholds[0]):
                break  # measured another way than the most recent sample: not comparable
            observed.append(obs)
            thresholds.append(thr)
            cond_name = name
            break
    head = f"most failures ({top.share:.0%}, last {basis.label}) are {top.reason}"
    if top.reason in NOT_A_THRESHOLD:
        return FailureStats(result, f"{head}: {NOT_A_THRESHOLD[top.reason]}", None, malformed)
    if len(observed) < min_samples or cond_name is None:
        return FailureStats(result, head if top.share >= 0.5 else None, None, malformed)
    summary = ConditionSummary(cond_name, len(observed), median(observed) or 0.0, median(thresholds) or 0.0)
    money = _money(cond_name)
    label = cond_name.replace("_", " ")
    med_text, thr_text = _fmt(summary.median_observed, money), _fmt(summary.threshold, money)
    if summary.threshold > 0 and summary.threshold * (1 - near_share) <= summary.median_observed < summary.threshold:
        text_out = (f"{head} just under the {thr_text} threshold: median {label} {med_text} "
                    f"— consider whether {thr_text} is the right floor")
    else:
        text_out = f"{head}: median {label} {med_text} against a threshold of {thr_text}"
    return FailureStats(result, text_out, summary, malformed)
