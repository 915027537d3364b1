"""/tune's second part, "Controls": every knob the service turns, its running value and bounds,
automatic or pinned (by whom), and the last automatic actions with ↩ Revert (admins).

    render_controls(controls.knobs(), await controls.recent(), now)
    controls_keyboard(signer, recent)            # Revert on the revertible ones
    render_control_result(result)                # the answer to /tune <knob> <value|auto>, a Revert
"""
from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardMarkup

from alerts.units import fmt_unit
from bot.callbacks import CallbackSigner
from bot.control_buttons import revert_keyboard
from bot.views.alerts import line
from bot.views.fmt import fmt_when
from delivery.html import bold, code, esc, italic
from recovery.control import ControlResult, KnobView
from recovery.ledger_queries import ActionView

MAX_KNOBS = 60
MAX_HELP = 100
USAGE = "/tune <control> <value> sets one (admins; it stays pinned until /tune <control> auto hands it back)."


def _knob_line(k: KnobView, now: float) -> str:
    value = code(fmt_unit(k.value, k.unit))
    bounds = esc(f"{fmt_unit(k.minimum, k.unit)}–{fmt_unit(k.maximum, k.unit)}")
    if k.pinned:
        mode = f"📌 pinned by {line(k.pinned_by or 'an operator', 64)} {esc(fmt_when(k.pinned_at, now))}"
    else:
        mode = "auto"
    text = f"• {bold(line(k.name, 64))} {value} ({bounds}) · {mode}"
    if k.help:
        text += f" — {line(k.help, MAX_HELP)}"
    return text


def _action_line(a: ActionView, now: float) -> str:
    text = f"{code(f'#{a.id}')} {esc(fmt_when(a.at, now))}: {line(a.describe(), 240)}"
    if a.reverted_at is not None:
        text += f" — {italic('reverted by ' + (a.reverted_by or 'an operator'))}"
    elif a.outcome:
        text += f" — {italic(line(a.outcome, 160))}"
    return text


def render_controls(knobs: Sequence[KnobView], recent: Sequence[ActionView], now: float) -> str:
    if not knobs:
        return f"🎚 {bold('Controls')}: none in this process (no pipeline runs here)."
    lines = [f"🎚 {bold('Controls')} — what the service turns by itself, now"]
    lines += [_knob_line(k, now) for k in knobs[:MAX_KNOBS]]
    if len(knobs) > MAX_KNOBS:
        lines.append(italic(f"… and {len(knobs) - MAX_KNOBS} more"))
    lines += ["", bold("Last automatic actions")]
    lines += [_action_line(a, now) for a in recent] or [italic("none yet")]
    lines += ["", italic(USAGE)]
    return "\n".join(lines)


def controls_keyboard(signer: CallbackSigner, recent: Sequence[ActionView]) -> InlineKeyboardMarkup | None:
    return revert_keyboard(signer, [(a.id, f"#{a.id} {a.knob}") for a in recent if a.revertible], card=True)


def render_control_result(result: ControlResult) -> str:
    icon = "✅" if result.changed else ("ℹ️" if result.ok else "⚠️")
    return f"{icon} {esc(result.text)}"
