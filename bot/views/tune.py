"""/tune: each rule's last 7 days and its suggested threshold; Apply and Revert buttons (admins).

    render_tune(rows)                       # TuneRow per rule
    tune_keyboard(signer, rows)             # Apply where a suggestion differs, Revert where a change stands
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from alerts.api import TuneRow
from alerts.units import fmt_unit
from bot.alert_buttons import REVERT, apply_button, revert_button
from bot.callbacks import CallbackSigner
from bot.views.alerts import line
from bot.views.fmt import fmt_duration
from bot.views.stuck import one_line
from delivery.html import bold, code, italic

MAX_BUTTONS = 80  # Telegram allows 100 buttons in one keyboard


def _share(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value * 100:.0f}%"


def suggestion_differs(row: TuneRow) -> bool:
    return row.suggested is not None and math.isfinite(row.suggested) and not math.isclose(
        row.suggested, row.threshold, rel_tol=1e-9, abs_tol=1e-12)


def render_tune(rows: Sequence[TuneRow]) -> str:
    if not rows:
        return f"🎛 {bold('Tuning')}: no rules are loaded."
    lines = [f"🎛 {bold('Tuning')} — last 7 days, per rule"]
    for r in rows:
        u = r.unit
        lines += ["", f"{bold(one_line(r.rule, 48))} ({line(r.severity, 10)}): fired {code(r.fired)}× · "
                      f"firing {code(fmt_duration(r.total_firing_s))} · acked {code(_share(r.acked_share))} · "
                      f"cleared unattended {code(_share(r.cleared_unattended_share))}"]
        now_t = f"threshold {code(fmt_unit(r.threshold, u))}"
        if not math.isclose(r.threshold, r.file_threshold):
            now_t += f" (file {code(fmt_unit(r.file_threshold, u))})"
        if r.suggested is None:
            now_t += f" · no suggestion ({line(r.suggestion_basis or 'not enough healthy history', 120)})"
        elif suggestion_differs(r):
            now_t += f" → suggested {code(fmt_unit(r.suggested, u))} ({line(r.suggestion_basis, 120)})"
        else:
            now_t += " · suggestion agrees"
        lines.append("   " + now_t)
    lines += ["", italic("Apply sets the suggested threshold; Revert undoes the latest change. Admins only.")]
    return "\n".join(lines)


def tune_keyboard(signer: CallbackSigner, rows: Sequence[TuneRow]) -> InlineKeyboardMarkup | None:
    """One row per rule with something to press: Apply (a differing suggestion), Revert (a change)."""
    keyboard: list[list[InlineKeyboardButton]] = []
    count = 0
    for r in rows:
        row: list[InlineKeyboardButton] = []
        if suggestion_differs(r):
            row.append(apply_button(signer, r.rule))
        if r.last_change_id is not None:
            row.append(revert_button(signer, r.last_change_id, f"{REVERT} {r.rule}"[:40], card=True))
        if row and count + len(row) <= MAX_BUTTONS:
            keyboard.append(row)
            count += len(row)
    return InlineKeyboardMarkup(inline_keyboard=keyboard) if keyboard else None
