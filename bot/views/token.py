"""The /token message: a token's activation check re-run step by step on fresh pool data.

    text = render_token_debug(debug, now=clock.time())
    render_invalid_mint(InvalidMint("..."))
"""
from __future__ import annotations

from typing import Any

from delivery.html import bold, code, esc, italic
from bot.views.fmt import fmt_duration, fmt_when
from bot.views.stuck import display_name, display_text, one_line
from monitoring.activation_debug import BATCH, TOKEN_PAIRS, TokenDebug
from tokens.queries import TokenView

ENDPOINTS = {BATCH: "batch /tokens/v1", TOKEN_PAIRS: "per-token /token-pairs/v1"}
USAGE = "Usage: <code>/token &lt;mint address&gt;</code>"
# Conditions whose threshold is a ceiling (observed must not exceed it); the rest are floors.
CEILINGS = frozenset({"data_fresh", "pairs_well_formed"})
DETAIL_CHARS = 100  # a condition's detail is cut at a word boundary beyond this


def plural(n: int, word: str, words: str | None = None) -> str:
    """``plural(1, "pool") == "1 pool"``, ``plural(2, "pool") == "2 pools"``."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def _value(value: Any) -> str:
    """A condition value as plain (unescaped) text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return one_line(value, 40) if value is not None else "—"  # raw: callers escape it exactly once


def _cached(cached_at: float, reason: str | None, now: float) -> str:
    """`` (🕰 stale: cached 2m 10s ago; the market failed: ...)`` for pools the cache answered."""
    why = f"; the market failed: {display_text(reason, 60)}" if reason else "; the market is slow"
    return f" (🕰 {bold('stale')}: cached {esc(fmt_duration(max(0.0, now - cached_at)))} ago{why})"


def render_invalid_mint(error: Exception) -> str:
    return f"⚠️ {esc(error)}\n{USAGE}"


def render_untracked(mint: str) -> str:
    return (f"🔎 {code(mint)}\n\nThis mint is not tracked: it was never discovered, or it was archived and "
            "deleted after the retention period.")


def quarantine_lines(t: TokenView, now: float) -> list[str]:
    """Why a token is quarantined (or its checks fail to be written), and the way out (escaped)."""
    if t.quarantined_at is not None:
        return [f"🚫 {bold('Quarantined')} {esc(fmt_when(t.quarantined_at, now))}: "
                f"{display_text(t.quarantine_reason or 'unknown', 120)}",
                italic(f"Its check results could not be written {t.write_failures} times in a row, so it is out "
                       f"of the check queue; it is retried {fmt_when(t.next_check_at, now)}, and the next check "
                       "that is written lifts the quarantine.")]
    if t.write_failures:
        return [f"⚠️ {esc(plural(t.write_failures, 'check'))} in a row could not be written; retried "
                f"{esc(fmt_when(t.next_check_at, now))}"]
    return []


def render_token_debug(debug: TokenDebug, now: float, *, fetch_unavailable: bool = False) -> str:
    if not debug.tracked or debug.token is None:
        return render_untracked(debug.mint)
    t = debug.token
    title = display_name(t.name, 60) if t.name else "unnamed"
    symbol = f" ({display_name(t.symbol, 16)})" if t.symbol else ""
    lines = [
        f"🔎 {bold('Token')} {title}{symbol}",
        code(t.mint),
        f"Status {bold(t.status)} for {esc(fmt_duration(now - t.status_since))} · checks {code(t.check_count)}"
        f" · fetch failures in a row {code(t.consecutive_failures)}",
        f"Score {code(_value(t.score))} (ewma {code(_value(t.score_ewma))}) · next check "
        f"{esc(fmt_when(t.next_check_at, now))}",
    ]
    lines += quarantine_lines(t, now) + [""]
    if fetch_unavailable:
        lines.append(italic("No DexScreener client in this process: fresh check skipped."))
    else:
        steps = " → ".join(
            f"{esc(ENDPOINTS.get(s.endpoint, s.endpoint))}: "
            + (f"failed ({display_text(s.error, 80)})" if s.error else plural(s.pools, "pool")
               + (f", {s.skipped} malformed" if s.skipped else ""))
            + (_cached(s.cached_at, s.stale_reason, now) if s.cached_at is not None else "")
            for s in debug.fetch_steps
        )
        lines.append(f"{bold('Fresh check')} — {steps}")
        result = debug.result
        if debug.fetch_failed:
            lines.append(f"⚠️ could not evaluate: the fetch failed ({display_text(debug.fetch_error, 80)}); "
                         "no condition was judged")
        elif result is not None:
            for c in result.conditions:
                icon = "✅" if c.passed else "❌"
                detail = f" — {display_text(c.detail, DETAIL_CHARS)}" if c.detail else ""
                bound = "max" if c.name in CEILINGS else "need ≥"
                lines.append(f"{icon} {code(c.name)}: {esc(_value(c.observed))} "
                             f"({bound} {esc(_value(c.threshold))}){detail}")
            verdict = ("✅ would activate" if result.passed
                       else f"❌ would not activate: {esc(', '.join(result.failure_codes))}")
            lines.append(bold(verdict) if result.passed else verdict)
    lines += ["", bold("Last checks")]
    if not debug.checks:
        lines.append("none yet")
    for chk in debug.checks:
        outcome = ("✅ passed" if chk.passed else
                   f"❌ {display_name(chk.primary_failure, 40)}" if chk.ok
                   else f"⚠️ fetch failed: {display_text(chk.error, 60)}")
        stale = f" · 🕰 {display_text(chk.error, 80)}" if chk.ok and chk.error else ""  # judged on cached pools
        lines.append(f"• {esc(fmt_when(chk.at, now))} [{esc(chk.status_at_check)}] {outcome} · "
                     f"{esc(plural(chk.pairs_count, 'pool'))}{stale}")
    lines += ["", bold("Transitions")]
    if not debug.transitions:
        lines.append("none")
    for tr in debug.transitions:
        spent = f" after {esc(fmt_duration(tr.time_in_previous_s))}" if tr.time_in_previous_s is not None else ""
        lines.append(f"• {esc(fmt_when(tr.at, now))} {esc(tr.from_status or '—')} → {esc(tr.to_status)} "
                     f"({display_name(tr.reason, 40)}){spent}")
    return "\n".join(lines)
