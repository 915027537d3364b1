"""/ping: the doctor checklist (database, Redis, bot, chats, market, outbox); admins can send a test message.

"📨 Send test message" queues the test message in the outbox (so a press during a Telegram
fault is not lost: it arrives when Telegram takes it) and answers the press exactly once.
"""
from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.callbacks import CallbackSigner, PingAction, PingCb, Signed
from bot.commands import CommandSpec, Role
from bot.context import BotContext
from bot.doctor import check_outbox, configured_chats, queue_test_messages, run_doctor, send_test_messages
from bot.routers.common import admin_flags, answer_query, edit_in_place, flags_for, send_pieces
from bot.views.checklist import ping_keyboard, render_checklist

log = logging.getLogger(__name__)

PING = CommandSpec("ping", "Health checklist: database, Redis, Telegram, chats, market", "/ping")
COMMANDS = [PING]


def _timeout(ctx: BotContext) -> float:
    return ctx.doctor_timeout_s if ctx.doctor_timeout_s is not None else min(5.0, ctx.settings.api_timeout_s)


async def _checklist(ctx: BotContext, bot: Bot) -> str:
    settings = ctx.settings
    results = await run_doctor(
        settings, bot=bot if settings.telegram_bot_token else None, db=ctx.db, redis=ctx.redis,
        send_test_messages=False, timeout_s=_timeout(ctx))
    if ctx.outbox is not None:
        results.append(await check_outbox(ctx.outbox))
    return render_checklist(results)


def _with_test(role: Role, chat_type: str | None) -> bool:
    return role >= Role.ADMIN or chat_type not in (None, "private")


def make_router() -> Router:
    router = Router(name="ping")

    @router.message(Command(PING.name), flags=flags_for(PING))
    async def ping(message: Message, ctx: BotContext, bot: Bot, cb_signer: CallbackSigner, role: Role) -> None:
        text = await _checklist(ctx, bot)
        await send_pieces(message, text, ping_keyboard(cb_signer, with_test=_with_test(role, message.chat.type)))

    @router.callback_query(Signed(PingCb, F.action == PingAction.RERUN), flags=flags_for(PING))
    async def rerun(query: CallbackQuery, ctx: BotContext, bot: Bot, cb_signer: CallbackSigner, role: Role) -> None:
        chat_type = query.message.chat.type if query.message is not None else None
        text = await _checklist(ctx, bot)
        await edit_in_place(query, text, ping_keyboard(cb_signer, with_test=_with_test(role, chat_type)),
                            resend_hint="/ping", done_text="Checked again.")

    @router.callback_query(Signed(PingCb, F.action == PingAction.TEST), flags=admin_flags())
    async def test_message(query: CallbackQuery, callback_data: PingCb, ctx: BotContext, bot: Bot,
                           cb_signer: CallbackSigner) -> None:
        if cb_signer.is_expired(callback_data.ts):
            await answer_query(query, "This button has expired; send /ping again.", show_alert=True)
            return
        if not ctx.settings.telegram_bot_token:
            await answer_query(query, "Console mode: there are no Telegram chats to test.", show_alert=True)
            return
        if not configured_chats(ctx.settings):
            await answer_query(query, "No chats are configured (TELEGRAM_ALERT_CHAT_ID).", show_alert=True)
            return
        if ctx.outbox is not None:
            queued = await queue_test_messages(ctx.outbox, ctx.settings, key=f"ping-test:{query.id}")
            log.info("admin %s queued test messages to %d chat(s)", query.from_user.id, queued)
            await answer_query(query, f"Queued a test message to {queued} chat(s); "
                                      "it arrives as soon as Telegram takes it.")
            return
        # No outbox in this process (a dispatcher used on its own): send now, answer once.
        results = await send_test_messages(bot, ctx.settings, _timeout(ctx))
        log.info("admin %s sent test messages: %s", query.from_user.id, [(r.name, r.ok) for r in results])
        failed = [r for r in results if not r.ok]
        if not failed:
            await answer_query(query, "Test message sent.")
        else:
            await answer_query(query, "; ".join(f"{r.name}: {r.detail}" for r in failed)[:190], show_alert=True)

    return router
