"""The /dashboard message: key figures with character sparklines, and its buttons.

    render_dashboard(rows, now)     # '<b>tokenwatch dashboard</b>\\n<pre>tokens monitoring  312 ▁▂▅█</pre>...'
    dashboard_body(text)            # the text without its "as of" line (what decides an edit)
"""
from __future__ import annotations

from datetime import datetime, timezone

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CallbackSigner, DashboardAction, DashboardCb
from charts.dashboard import DashRow
from delivery.html import bold, esc, italic

STAMP_PREFIX = "as of "


def render_dashboard(rows: list[DashRow], now: float, extra_sections: list[str] | None = None) -> str:
    """``extra_sections`` are ready HTML blocks (open incidents, once the alert engine exists)."""
    width = max((len(r.label) for r in rows), default=0)
    vwidth = max((len(r.value) for r in rows), default=0)
    table = "\n".join(f"{r.label.ljust(width)}  {r.value.rjust(vwidth)}  {r.spark}" for r in rows)
    parts = [bold("tokenwatch dashboard") + " · last hour", f"<pre>{esc(table)}</pre>" if rows else "no data yet"]
    parts += extra_sections or []
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%H:%M UTC")
    parts.append(italic(f"{STAMP_PREFIX}{stamp} · kept current; /dashboard off stops it"))
    return "\n".join(parts)


def dashboard_body(text: str) -> str:
    """``text`` without its last ("as of ...") line: edits happen only when this changed."""
    return text.rsplit("\n", 1)[0]


def dashboard_keyboard(signer: CallbackSigner) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="📌 Pin", callback_data=signer.pack(DashboardCb(action=DashboardAction.PIN))),
        InlineKeyboardButton(text="⏹ Stop", callback_data=signer.pack(DashboardCb(action=DashboardAction.STOP))),
    ]])
