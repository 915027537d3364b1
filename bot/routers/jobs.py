"""/jobs: the scheduler's jobs and the supervised loops, with their health; Refresh (viewers),
Run now and Restart loop (admins only, rights re-checked on every press, buttons expire)."""
from __future__ import annotations

import logging
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.callbacks import CallbackSigner, JobsAction, JobsCb, Signed
from bot.commands import CommandSpec, Role
from bot.context import BotContext
from bot.routers.common import admin_flags, edit_in_place, flags_for, send_pieces
from bot.views.jobs import jobs_keyboard, render_jobs

log = logging.getLogger(__name__)

JOBS = CommandSpec("jobs", "Scheduled jobs and background loops: next run, state, restarts, last error", "/jobs")
COMMANDS = [JOBS]


def _view(ctx: BotContext, signer: CallbackSigner, role: Role, chat_type: str | None) -> tuple[str, InlineKeyboardMarkup]:
    scheduler, supervisor = ctx.scheduler, ctx.supervisor
    now = ctx.clock.time()
    stats = scheduler.job_stats() if scheduler is not None else []
    loops = supervisor.loop_stats() if supervisor is not None else None
    text = render_jobs(stats, now, scheduler_running=scheduler is not None, loops=loops)
    # Action buttons for admins, and in group chats (where admins and viewers share one message;
    # a viewer's press is refused there).
    with_run = (scheduler is not None or supervisor is not None) and (
        role >= Role.ADMIN or chat_type not in (None, "private"))
    return text, jobs_keyboard([s.id for s in stats], signer, with_run=with_run,
                               loop_ids=[loop.id for loop in loops or ()])


def make_router() -> Router:
    router = Router(name="jobs")

    @router.message(Command(JOBS.name), flags=flags_for(JOBS))
    async def jobs(message: Message, ctx: BotContext, cb_signer: CallbackSigner, role: Role) -> None:
        text, keyboard = _view(ctx, cb_signer, role, message.chat.type)
        await send_pieces(message, text, keyboard)

    @router.callback_query(Signed(JobsCb, F.action == JobsAction.REFRESH), flags=flags_for(JOBS))
    async def refresh(query: CallbackQuery, ctx: BotContext, cb_signer: CallbackSigner, role: Role) -> None:
        chat_type = query.message.chat.type if query.message is not None else None
        text, keyboard = _view(ctx, cb_signer, role, chat_type)
        await edit_in_place(query, text, keyboard, resend_hint="/jobs", done_text="Refreshed.")

    @router.callback_query(Signed(JobsCb, F.action == JobsAction.RUN), flags=admin_flags())
    async def run_now(query: CallbackQuery, callback_data: JobsCb, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        if cb_signer.is_expired(callback_data.ts):
            await query.answer("This button has expired; send /jobs again.", show_alert=True)
            return
        if ctx.scheduler is None:
            await query.answer("The scheduler is not running in this process.", show_alert=True)
            return
        ok = await ctx.scheduler.run_now(callback_data.job)
        if not ok:
            await query.answer(f"Unknown job: {callback_data.job[:60]}", show_alert=True)
            return
        log.info("admin %s asked job %s to run now", query.from_user.id, callback_data.job)
        await query.answer(f"▶ {callback_data.job[:60]} will run now.")

    @router.callback_query(Signed(JobsCb, F.action == JobsAction.RESTART_LOOP), flags=admin_flags())
    async def restart_loop(query: CallbackQuery, callback_data: JobsCb, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        if cb_signer.is_expired(callback_data.ts):
            await query.answer("This button has expired; send /jobs again.", show_alert=True)
            return
        supervisor = ctx.supervisor
        if supervisor is None:
            await query.answer("No loops are supervised in this process.", show_alert=True)
            return
        if supervisor.get(callback_data.job) is None:
            await query.answer(f"Unknown loop: {callback_data.job[:60]}", show_alert=True)
            return
        # Answer first: the loop restarted may be the one running this handler (the console chat).
        await query.answer(f"↻ {callback_data.job[:60]} is restarting.")
        log.info("admin %s restarted loop %s", query.from_user.id, callback_data.job)
        await supervisor.restart(callback_data.job)

    return router
