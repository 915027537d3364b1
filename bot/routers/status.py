"""/status: the pipeline at a glance, plus sections other packages register; Refresh edits in place.

Every section renders the same ``MonitoringSnapshot`` (``ctx.collectors.coordinator``). /status
shows the latest one when it is at most one collection interval old (else it collects first);
🔄 Refresh always collects anew (sharing a cycle already running). The message ends with the
snapshot's time and age ("as of 14:05:31 UTC, 4s ago"), so nobody mistakes old figures for new.
"""
from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.callbacks import CallbackSigner, Signed, StatusCb
from bot.commands import CommandSpec
from bot.context import BotContext
from bot.routers.common import edit_in_place, flags_for, send_pieces
from bot.status_sections import StatusSections
from bot.views.status import render_no_monitoring, render_status, status_keyboard

STATUS = CommandSpec("status", "Token counts, checks per minute, backlog, activations", "/status")
COMMANDS = [STATUS]


async def build_status(ctx: BotContext, sections: StatusSections, *, refresh: bool = False) -> str:
    """The /status text from the latest snapshot (``refresh``: from a new collection)."""
    registry = ctx.collectors
    if registry is None:
        return render_status([render_no_monitoring()], None, ctx.clock.time())
    snapshot = await registry.fresh_snapshot(None if refresh else registry.collect_interval_s)
    now = ctx.clock.time()
    texts = await sections.render_all(ctx, snapshot, now)
    return render_status(texts, snapshot.at, now, snapshot.rate_window_s)


def make_router() -> Router:
    router = Router(name="status")

    @router.message(Command(STATUS.name), flags=flags_for(STATUS))
    async def status(message: Message, ctx: BotContext, status_sections: StatusSections,
                     cb_signer: CallbackSigner) -> None:
        await send_pieces(message, await build_status(ctx, status_sections), status_keyboard(cb_signer))

    @router.callback_query(Signed(StatusCb), flags=flags_for(STATUS))
    async def refresh(query: CallbackQuery, ctx: BotContext, status_sections: StatusSections,
                      cb_signer: CallbackSigner) -> None:
        text = await build_status(ctx, status_sections, refresh=True)
        await edit_in_place(query, text, status_keyboard(cb_signer), resend_hint="/status", done_text="Refreshed.")

    return router
