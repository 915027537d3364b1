"""The /status message: the pipeline section and the frame around all sections.

    render_pipeline_section(PipelineSummary(counts={"monitoring": 3}, checks=CheckRates(ok=12.0), backlog=0,
                                            activations_1h=1))
"""
from __future__ import annotations


from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CallbackSigner, StatusAction, StatusCb
from delivery.html import bold, code, esc
from bot.views.fmt import fmt_rate
from tokens.queries import PipelineSummary

STATUS_ORDER = ("monitoring", "active", "archived")


def checks_line(data: PipelineSummary) -> str:
    """``Checks/min: 0.0 ok, 235 failed (fetch)``: a failed fetch is recorded as a check, so the
    total alone would rise during a market outage."""
    return (f"Checks/min: {code(fmt_rate(data.checks.ok) + ' ok')}, "
            f"{code(fmt_rate(data.checks.failed) + ' failed')} (fetch)")


def render_pipeline_section(data: PipelineSummary) -> str:
    names = [s for s in STATUS_ORDER if s in data.counts] + sorted(set(data.counts) - set(STATUS_ORDER))
    counts = " · ".join(f"{esc(name)} {code(data.counts[name])}" for name in names) or "no tokens yet"
    return "\n".join([
        bold("Pipeline"),
        f"Tokens: {counts}",
        f"{checks_line(data)}  Backlog (due now): {code(data.backlog)}",
        f"Activations (last hour): {code(data.activations_1h)}",
    ])


def render_status(sections: list[str], generated_at: float) -> str:
    from datetime import datetime, timezone

    stamp = datetime.fromtimestamp(generated_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = "\n\n".join(s for s in sections if s.strip())
    return f"📊 {bold('tokenwatch status')}\n\n{body}\n\n<i>as of {esc(stamp)}</i>"


def render_section_error(name: str, error: BaseException) -> str:
    return f"{bold(name)}\n<i>unavailable: {esc(type(error).__name__)}</i>"


def status_keyboard(signer: CallbackSigner) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="🔄 Refresh", callback_data=signer.pack(StatusCb(action=StatusAction.REFRESH))),
    ]])
