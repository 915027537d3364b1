"""/dashboard: one compact message with the key figures and sparklines, kept current.

    /dashboard        -> posts the dashboard (a previous one in this chat stops being edited)
    /dashboard off    -> stops it (the message stays, its buttons go)

``DashboardKeeper.refresh`` runs as the scheduler job ``bot.dashboard`` every
``DASHBOARD_REFRESH_S``: it reads the figures once for all chats and queues an outbox edit
only where the text changed (the sender's limits apply). The state lives in the
``dashboards`` table: after a restart the same message goes on being edited. The 📌 button pins
the message (``pinChatMessage``; a group needs the bot to have the pin right).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from functools import partial
from typing import Any

from aiogram import F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from app.scheduler import JobSpec
from bot.callbacks import CallbackSigner, DashboardAction, DashboardCb, Signed
from bot.context import BotContext
from bot.commands import CommandSpec
from bot.routers.common import flags_for
from bot.views.graph_dashboard import dashboard_body, dashboard_keyboard, render_dashboard
from delivery.store import Outbox
from charts.dashboard import drop_dashboard, get_dashboard, load_dashboards, put_dashboard, read_dashboard
from charts.models import Dashboard
from delivery.html import esc, italic
from delivery.models import DEAD

log = logging.getLogger(__name__)

DASHBOARD = CommandSpec("dashboard", "A live message with the key figures; /dashboard off stops it", "/dashboard")
COMMANDS = [DASHBOARD]
JOB_ID = "bot.dashboard"
NO_PIN_RIGHTS = ("I can't pin here: I need to be an admin with the right to pin messages. "
                 "You can pin the dashboard yourself.")


class DashboardKeeper:
    """Posts, refreshes and stops the chats' dashboards (see the module docstring).

        keeper = keeper_of(ctx)
        await keeper.start(chat_id); await keeper.refresh(); await keeper.stop(chat_id)
    """

    def __init__(self, ctx: BotContext, signer: CallbackSigner | None = None) -> None:
        self.ctx = ctx
        self.refresh_s = float(ctx.settings.dashboard_refresh_s)
        # The key comes from the bot token, so these buttons verify in the dispatcher too.
        self.signer = signer or CallbackSigner.from_token(ctx.settings.telegram_bot_token, ctx.clock)
        self.edits = 0
        self.unchanged = 0

    @property
    def outbox(self) -> Outbox:
        if self.ctx.outbox is None:
            raise RuntimeError("the dashboard sends through the outbox: build the bot (bot.setup.build_bot) first")
        return self.ctx.outbox

    def jobs(self) -> list[JobSpec]:
        return [JobSpec(JOB_ID, self.refresh, interval_s=self.refresh_s, budget_s=max(5.0, 0.8 * self.refresh_s))]

    async def build_text(self, now: float) -> str:
        rows = await read_dashboard(self.ctx.metrics, now) if self.ctx.metrics is not None else []
        return render_dashboard(rows, now)

    async def start(self, chat_id: int) -> None:
        now = self.ctx.clock.time()
        text = await self.build_text(now)
        key = f"dashboard:{chat_id}:{int(now * 1000)}"
        await self.outbox.enqueue(chat_id, text, key=key, reply_markup=dashboard_keyboard(self.signer))

        async def save(session: Any) -> Dashboard | None:
            previous = await get_dashboard(session, chat_id)
            if previous is not None:
                session.expunge(previous)
            await put_dashboard(session, Dashboard(chat_id=chat_id, outbox_key=key, last_text=text,
                                                   started_at=now, updated_at=now))
            return previous

        previous = await self.ctx.db.run(save)
        if previous is not None:  # the older message stops being edited and loses its buttons
            await self._edit(previous, dashboard_body(previous.last_text) + "\n"
                             + italic("replaced by a newer dashboard below"), final=True)

    async def stop(self, chat_id: int) -> bool:
        """Stop keeping the chat's dashboard current; its last text stays, without buttons."""
        found = await self.ctx.db.run(partial(drop_dashboard, chat_id=chat_id))
        if found is None:
            return False
        stamp = datetime.fromtimestamp(self.ctx.clock.time(), tz=timezone.utc).strftime("%H:%M UTC")
        text = dashboard_body(found.last_text) + "\n" + italic(f"stopped at {stamp}; /dashboard starts a new one")
        await self._edit(found, text, final=True)
        return True

    async def _edit(self, dash: Dashboard, text: str, *, final: bool = False) -> None:
        key = f"dashboard:{dash.chat_id}:{int(dash.started_at * 1000)}:{'stop' if final else dash.edits + 1}"
        markup = None if final else dashboard_keyboard(self.signer)
        if dash.message_id is not None:
            await self.outbox.enqueue_edit(dash.chat_id, message_id=dash.message_id, text=text,
                                               reply_markup=markup, key=key)
        else:
            await self.outbox.enqueue_edit(dash.chat_id, target_key=dash.outbox_key, text=text,
                                               reply_markup=markup, key=key)

    async def _gone(self, dash: Dashboard) -> bool:
        """True when the message can no longer be edited (never delivered, or the last edit died)."""
        posted = await self.outbox.get(dash.outbox_key)
        if dash.message_id is None and posted is not None and posted.telegram_message_id is not None:
            dash.message_id = int(posted.telegram_message_id)
        if dash.message_id is None and (posted is None or posted.status == DEAD):
            return True
        if dash.edits:
            last = await self.outbox.get(f"dashboard:{dash.chat_id}:{int(dash.started_at * 1000)}:{dash.edits}")
            if last is not None and last.status == DEAD:  # e.g. someone deleted the message
                return True
        return False

    async def refresh(self) -> int:
        """The scheduler job: queue an edit for every dashboard whose text changed; returns edits queued."""
        if self.ctx.outbox is None:
            return 0
        dashboards = await self.ctx.db.run(load_dashboards)
        if not dashboards:
            return 0
        now = self.ctx.clock.time()
        text = await self.build_text(now)
        queued = 0
        for dash in dashboards:
            if await self._gone(dash):
                log.info("dashboard in chat %s can no longer be edited; stopped", dash.chat_id)
                await self.ctx.db.run(partial(drop_dashboard, chat_id=dash.chat_id))
                continue
            changed = dashboard_body(dash.last_text) != dashboard_body(text)
            if changed:
                await self._edit(dash, text)
                dash.edits += 1
                dash.last_text = text
                dash.updated_at = now
                queued += 1
            else:
                self.unchanged += 1

            async def save(session: Any, d: Dashboard = dash) -> None:
                row = await get_dashboard(session, d.chat_id)
                if row is not None and row.outbox_key == d.outbox_key:  # not restarted meanwhile
                    row.message_id, row.edits, row.last_text, row.updated_at = (
                        d.message_id, d.edits, d.last_text, d.updated_at)
                    session.add(row)

            await self.ctx.db.run(save)
        self.edits += queued
        return queued


def keeper_of(ctx: BotContext, signer: CallbackSigner | None = None) -> DashboardKeeper:
    """The context's keeper; a handler passes the dispatcher's signer, which its buttons then use
    (the same key as ``from_token`` with a bot token; the console chat's key is random)."""
    keeper = ctx.dashboards
    if keeper is None:
        keeper = ctx.dashboards = DashboardKeeper(ctx, signer)
    elif signer is not None:
        keeper.signer = signer
    return keeper


def make_router() -> Router:
    router = Router(name="dashboard")

    @router.message(Command(DASHBOARD.name), flags=flags_for(DASHBOARD))
    async def dashboard(message: Message, command: CommandObject, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        arg = (command.args or "").strip().lower()
        keeper = keeper_of(ctx, cb_signer)
        if ctx.outbox is None:
            await message.answer("Delivery is not running in this process; no dashboard can be kept.")
            return
        if arg in ("off", "stop"):
            stopped = await keeper.stop(message.chat.id)
            await message.answer("Dashboard stopped." if stopped else "No dashboard is running in this chat.")
            return
        if arg:
            await message.answer(esc("Usage: /dashboard to start it, /dashboard off to stop it."))
            return
        await keeper.start(message.chat.id)

    @router.callback_query(Signed(DashboardCb, F.action == DashboardAction.STOP), flags=flags_for(DASHBOARD))
    async def stop(query: CallbackQuery, ctx: BotContext, cb_signer: CallbackSigner) -> None:
        if not isinstance(query.message, Message):
            await query.answer("This message is too old; send /dashboard off.", show_alert=True)
            return
        stopped = await keeper_of(ctx, cb_signer).stop(query.message.chat.id)
        await query.answer("Dashboard stopped." if stopped else "This dashboard is not running any more.")

    @router.callback_query(Signed(DashboardCb, F.action == DashboardAction.PIN), flags=flags_for(DASHBOARD))
    async def pin(query: CallbackQuery) -> None:
        message = query.message
        if not isinstance(message, Message) or query.bot is None:
            await query.answer("This message is too old to pin; send /dashboard again.", show_alert=True)
            return
        try:
            await query.bot.pin_chat_message(message.chat.id, message.message_id, disable_notification=True)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            reason = exc.message.lower()
            if "rights" in reason or "admin" in reason or "forbidden" in reason:
                await query.answer(NO_PIN_RIGHTS, show_alert=True)
            else:
                await query.answer(f"Telegram refused to pin it: {exc.message[:120]}", show_alert=True)
            return
        except TelegramAPIError as exc:
            await query.answer(f"Telegram refused to pin it: {exc.message[:120]}", show_alert=True)
            return
        await query.answer("📌 Pinned.")

    return router
