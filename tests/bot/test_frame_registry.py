"""The command registry drives /help and the command menu; /status takes extra sections."""
from __future__ import annotations

import io
import types

import pytest
from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from app.clock import ManualClock
from bot.context import BotContext
from app.settings import Settings
from bot import app as bot_app
from bot.commands import CommandRegistry, CommandSpec, Role
from bot.console import ConsoleChat
from bot.routers.common import flags_for
from bot.status_sections import default_sections
from bot.views.help import render_help


def test_registry_rejects_bad_and_duplicate_commands():
    registry = CommandRegistry([CommandSpec("status", "Status", "/status")])
    with pytest.raises(ValueError):
        registry.add(CommandSpec("status", "Again", "/status"))
    with pytest.raises(ValueError):
        CommandSpec("Bad-Name", "x", "/x")
    with pytest.raises(ValueError):
        CommandSpec("ok", "", "/ok")
    with pytest.raises(ValueError):
        CommandSpec("ok", "x", "/ok", role="root")


def test_help_shows_admin_commands_only_to_admins():
    registry = CommandRegistry([CommandSpec("status", "Status", "/status"),
                                CommandSpec("maint", "Maintenance on/off", "/maint on 30m", role=Role.ADMIN)])
    viewer = render_help(registry, Role.VIEWER)
    admin = render_help(registry, Role.ADMIN)
    assert "/maint" not in viewer and "1 more command(s) need the admin role" in viewer
    assert "/maint 🔒" in admin and "<code>/maint on 30m</code>" in admin
    assert [c.command for c in registry.bot_commands(Role.VIEWER)] == ["status"]


@pytest.fixture
def ctx(sqlite_url, sqlite_db):
    return BotContext(settings=Settings(_env_file=None, database_url=sqlite_url), db=sqlite_db,
                      clock=ManualClock(1_700_000_000))


async def test_a_plugged_in_router_appears_in_help_and_admin_gating_applies(ctx, monkeypatch):
    spec = CommandSpec("maint", "Maintenance on/off", "/maint on 30m", role=Role.ADMIN)

    def make_router() -> Router:
        router = Router(name="maint")

        @router.message(Command("maint"), flags=flags_for(spec))
        async def maint(message: Message) -> None:
            await message.answer("maintenance on")

        return router

    module = types.SimpleNamespace(COMMANDS=[spec], make_router=make_router)
    monkeypatch.setattr(bot_app, "ROUTER_MODULES", [*bot_app.ROUTER_MODULES, module])
    chat = ConsoleChat(ctx, out=io.StringIO(), interactive=True)
    await chat.handle_line("/help")
    await chat.handle_line("/maint on")
    out = chat.printer.out.getvalue()
    assert "/maint 🔒 — Maintenance on/off" in out and "maintenance on" in out
    # the same router, a viewer: refused by the role gate
    from aiogram.types import Update

    update = Update.model_validate({"update_id": 99, "message": {
        "message_id": 5, "date": 0, "text": "/maint on", "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "v"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}, context={"bot": chat.bot})
    await chat.dp.feed_update(chat.bot, update, trusted_role="viewer")
    assert chat.printer.out.getvalue().rstrip().endswith("Only admins can do that.")
    await chat.close()


async def test_status_renders_registered_sections_and_survives_a_broken_one(ctx):
    from monitoring.collector import CollectorRegistry
    from monitoring.collectors.pipeline import PipelineCollector

    ctx.collectors = CollectorRegistry(clock=ctx.clock)
    ctx.collectors.register_pipeline(PipelineCollector(ctx.db))
    sections = default_sections()

    async def monitoring(ctx, snapshot, now):
        return "<b>Monitoring</b>\nall quiet"

    async def broken(ctx, snapshot, now):
        raise RuntimeError("boom")

    sections.add("monitoring", monitoring, order=20)
    sections.add("broken", broken, order=15)
    chat = ConsoleChat(ctx, bot_app.build_dispatcher(ctx, status_sections=sections), out=io.StringIO(),
                       interactive=True)
    await chat.handle_line("/status")
    out = chat.printer.out.getvalue()
    assert out.index("Pipeline") < out.index("broken") < out.index("Monitoring")
    assert "unavailable: RuntimeError" in out and "all quiet" in out
    assert sections.failures == 1
    await chat.close()
