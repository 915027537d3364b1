"""The doctor checklist as Telegram HTML (the CLI prints ``bot.doctor.render_text``).

    render_checklist(await run_doctor(settings))
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CallbackSigner, PingAction, PingCb
from delivery.html import bold, esc, truncate


class CheckLine(Protocol):
    """What ``bot.doctor.CheckResult`` provides."""

    @property
    def name(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def detail(self) -> str: ...
    @property
    def fix(self) -> str: ...


def render_checklist(results: Sequence[CheckLine]) -> str:
    failed = sum(1 for r in results if not r.ok)
    head = "✅ all checks passed" if not failed else f"❌ {failed} of {len(results)} checks failed"
    lines = [f"🩺 {bold('tokenwatch checklist')}: {esc(head)}", ""]
    for r in results:
        mark = "✅" if r.ok else "❌"
        lines.append(f"{mark} {bold(r.name)}: {truncate(r.detail, 300)}")
        if not r.ok and r.fix:
            lines.append(f"   fix: {truncate(r.fix, 300)}")
    return "\n".join(lines)


def ping_keyboard(signer: CallbackSigner, *, with_test: bool) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(text="🔄 Run again", callback_data=signer.pack(PingCb(action=PingAction.RERUN)))]]
    if with_test:
        rows.append([InlineKeyboardButton(
            text="📨 Send test message",
            callback_data=signer.pack(PingCb(action=PingAction.TEST, ts=signer.now_ts())))])
    return InlineKeyboardMarkup(inline_keyboard=rows)
