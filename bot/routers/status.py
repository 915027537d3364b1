"""/status: the pipeline at a glance, plus sections other packages register; Refresh edits in place."""
from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.callbacks import CallbackSigner, Signed, StatusCb
from bot.commands import CommandSpec
from bot.routers.common import edit_in_place, flags_for, send_pieces
from bot.status_sections import StatusSections
from bot.views.status import render_status, status_keyboard

STATUS = CommandSpec("status", "Token counts, checks per minute, backlog, activations", "/status")
COMMANDS = [STATUS]


async def build_status(ctx: Any, sections: StatusSections) -> str:
    now = ctx.clock.time()
    async with ctx.db.session() as session:
        texts = await sections.render_all(ctx, session, now)
    return render_status(texts, now)


def make_router() -> Router:
    router = Router(name="status")

    @router.message(Command(STATUS.name), flags=flags_for(STATUS))
    async def status(message: Message, ctx: Any, status_sections: StatusSections,
                     cb_signer: CallbackSigner) -> None:
        await send_pieces(message, await build_status(ctx, status_sections), status_keyboard(cb_signer))

    @router.callback_query(Signed(StatusCb), flags=flags_for(STATUS))
    async def refresh(query: CallbackQuery, ctx: Any, status_sections: StatusSections,
                      cb_signer: CallbackSigner) -> None:
        text = await build_status(ctx, status_sections)
        await edit_in_place(query, text, status_keyboard(cb_signer), resend_hint="/status", done_text="Refreshed.")

    return router
