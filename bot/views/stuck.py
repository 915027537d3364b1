"""The /stuck message: stuck tokens, one page at a time, each with a button to its /token view.

    text = render_stuck(page, now=clock.time(), stuck_after_s=180, failure_streak=3)
    keyboard = stuck_keyboard(page, signer)
"""
from __future__ import annotations

import re

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CallbackSigner
from delivery.html import bold, code, esc, truncate
from bot.views.fmt import fmt_duration, fmt_when
from bot.views.pipeline_cb import StuckCb, TokenCb
from monitoring.pipeline.stuck import (
    FAILING_CHECKS,
    NEVER_CHECKED,
    NO_SUCCESSFUL_CHECK,
    QUARANTINED,
    StuckPage,
    StuckToken,
)

NAME_CHARS = 40
# Bidirectional controls (LRE RLE PDF LRO RLO, LRI RLI FSI PDI, LRM RLM ALM) and NUL: a hostile
# name or error text must not flip the rest of the line, so they are dropped from displayed text.
BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\x00"))


# Line and paragraph breaks and other C0/C1 control characters: a hostile name must not fake
# extra lines (or a whole fake alert) in a message, so each becomes a single space.
_LINE_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(value: object, n: int) -> str:
    """Untrusted text as one display line, NOT escaped: bidi controls and NUL removed, line
    breaks and other control characters replaced by a space, cut to ``n`` characters (ending
    in ``…``). ``one_line("evil\\n✅ fake", 40) == "evil ✅ fake"``."""
    if n < 1:
        raise ValueError("length must be >= 1")
    text = _LINE_BREAKING.sub(" ", str(value).translate(BIDI_CONTROLS))
    return text if len(text) <= n else text[: n - 1] + "…"


def cut_words(text: str, n: int) -> str:
    """``text`` cut to at most ``n`` characters at a word boundary, ending in ``…``, so a
    number such as ``$2,024`` is dropped whole rather than shown as ``$2,02…``. A single
    word longer than the cut (a hostile name, a hash) is cut hard.

        cut_words("best external pool; best $2,024", 28)   # 'best external pool; best…'
    """
    if n < 1:
        raise ValueError("length must be >= 1")
    if len(text) <= n:
        return text
    head = text[: n - 1]
    if not text[n - 1].isspace():
        space = max(head.rfind(" "), head.rfind("\t"))
        if space > 0:
            head = head[:space]
    return head.rstrip(" ,;:([{-") + "…"


def display_text(value: object, n: int) -> str:
    """Untrusted prose (an error, a condition's detail) for display: one line, cut at a word
    boundary (:func:`cut_words`), then escaped."""
    if value is None:
        return truncate(None, n)
    return esc(cut_words(_LINE_BREAKING.sub(" ", str(value).translate(BIDI_CONTROLS)), n))


def display_name(value: object, n: int) -> str:
    """Untrusted text (a name, symbol or error) for display: :func:`one_line`, then escaped."""
    if value is None:
        return truncate(None, n)
    return esc(one_line(value, n))


def short_mint(mint: str) -> str:
    return mint if len(mint) <= 12 else f"{mint[:6]}…{mint[-4:]}"


def reason_text(item: StuckToken, now: float | None = None) -> str:
    """The reason in words (escaped)."""
    if item.reason.startswith(QUARANTINED + ":"):
        detail = item.reason.split(":", 1)[1]
        since = f" {esc(fmt_when(item.quarantined_at, now))}" if item.quarantined_at is not None and now is not None else ""
        return (f"🚫 quarantined{since}: its check results could not be written "
                f"({display_text(detail, 80)}); retried automatically")
    if item.reason == NEVER_CHECKED:
        return "never checked"
    if item.reason == NO_SUCCESSFUL_CHECK:
        return "no successful check"
    if item.reason.startswith(FAILING_CHECKS + ":"):
        detail = item.reason.split(":", 1)[1]
        return f"{item.consecutive_failures} fetch failures in a row: {display_text(detail, 80)}"
    return esc(item.reason)


def stuck_rule(stuck_after_s: float | None, failure_streak: int | None = None) -> str:
    """What "stuck" means, in words (escaped):
    ``Stuck = in monitoring 3m 00s without a successful check, or 3 failed fetches in a row.``"""
    parts = []
    if stuck_after_s:
        parts.append(f"in monitoring {fmt_duration(stuck_after_s)} without a successful check")
    if failure_streak:
        parts.append(f"{failure_streak} failed fetches in a row (monitoring or active)")
    return esc(f"Stuck = {', or '.join(parts)}.") if parts else ""


def render_stuck(page: StuckPage, now: float, *, stuck_after_s: float | None = None,
                 failure_streak: int | None = None) -> str:
    rule = stuck_rule(stuck_after_s, failure_streak)
    if page.total == 0:
        return f"🧊 {bold('Stuck tokens')}\n\nNothing is stuck." + (f" ({rule})" if rule else "")
    lines = [f"🧊 {bold('Stuck tokens')}: {code(page.total)}"] + ([f"<i>{rule}</i>"] if rule else []) + [
        f"page {page.page + 1} of {page.pages}"]
    first = page.page * page.page_size
    for n, item in enumerate(page.items, start=first + 1):
        label = display_name(item.name, NAME_CHARS) if item.name else "unnamed"
        symbol = f" ({display_name(item.symbol, 12)})" if item.symbol else ""
        lines += [
            "",
            f"{n}. {label}{symbol} {code(short_mint(item.mint))}",
            f"   {reason_text(item, now)}",
            f"   in {esc(item.status)} {esc(fmt_duration(item.stuck_for_s))} · last check "
            f"{esc(fmt_when(item.last_check_at, now))} · last success {esc(fmt_when(item.last_success_at, now))}",
        ]
    return "\n".join(lines)


def stuck_keyboard(page: StuckPage, signer: CallbackSigner) -> InlineKeyboardMarkup | None:
    """One "🔎" button per token (two per row), then ◀ / ▶ when there are other pages."""
    rows: list[list[InlineKeyboardButton]] = []
    row: list[InlineKeyboardButton] = []
    first = page.page * page.page_size
    for n, item in enumerate(page.items, start=first + 1):
        row.append(InlineKeyboardButton(text=f"🔎 {n}. {short_mint(item.mint)}",
                                        callback_data=signer.pack(TokenCb(token_id=item.token_id))))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    nav: list[InlineKeyboardButton] = []
    if page.has_prev:
        nav.append(InlineKeyboardButton(text="◀ Prev", callback_data=signer.pack(StuckCb(page=page.page - 1))))
    nav.append(InlineKeyboardButton(text="🔄", callback_data=signer.pack(StuckCb(page=page.page))))
    if page.has_next:
        nav.append(InlineKeyboardButton(text="Next ▶", callback_data=signer.pack(StuckCb(page=page.page + 1))))
    rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)
