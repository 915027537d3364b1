"""End to end: the real aiogram client polls the fake Bot API server; users type commands."""
from __future__ import annotations

from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, ALERT_CHAT, GROUP_MEMBER, NOW, TOKEN, VIEWER, buttons, press, say
from tokens.models import ACTIVE, Token, Transition


async def test_start_tells_each_user_their_role(fake, running_bot):
    admin = await say(fake, ADMIN, ADMIN, "/start")
    viewer = await say(fake, VIEWER, VIEWER, "/start")
    member = await say(fake, ALERT_CHAT, GROUP_MEMBER, "/start@tokenwatch_test_bot")
    assert "Your role: admin" in admin.plain
    assert "Your role: viewer" in viewer.plain
    assert "Your role: viewer" in member.plain  # alert-chat members count as viewers


async def test_help_lists_every_registered_command_with_an_example(fake, running_bot):
    msg = await say(fake, VIEWER, VIEWER, "/help")
    for name in ("start", "help", "status", "jobs", "ping"):
        assert f"/{name}" in msg.plain
    assert "e.g. /status" in msg.plain


async def test_command_menu_is_published_from_the_registry(fake, running_bot):
    await fake.wait_for(lambda: fake.commands(TOKEN), 5)
    names = [c["command"] for c in fake.commands(TOKEN)]
    assert names == ["start", "help", "status", "stuck", "token", "jobs", "ping", "graph", "dashboard",
                     "alerts", "silence", "maintenance", "tune", "digest"]  # /ack is in each admin's menu only


async def test_status_shows_counts_backlog_and_activations_from_the_database(fake, running_bot, frame_ctx):
    async with frame_ctx.db.session() as session:
        for i, status in enumerate(["monitoring", "monitoring", "active", "archived"]):
            session.add(Token(mint=f"Mint{i}", status=status, status_since=NOW - 100, discovered_at=NOW - 500,
                              next_check_at=NOW - 5 if status != "archived" else None))
        await session.flush()
        session.add(Transition(token_id=3, from_status="monitoring", to_status=ACTIVE, at=NOW - 60, reason="passed"))
        await session.commit()
    msg = await say(fake, VIEWER, VIEWER, "/status")
    assert "Tokens: monitoring 2 · active 1 · archived 1" in msg.plain.splitlines()
    assert "Backlog (due now): 3" in msg.plain
    assert "Activations (last 1h): 1" in msg.plain
    assert "Refresh" in " ".join(buttons(msg))


async def test_refresh_edits_the_status_message_in_place(fake, running_bot, frame_ctx):
    msg = await say(fake, VIEWER, VIEWER, "/status")
    assert "Tokens: monitoring 0 · active 0 · archived 0" in msg.plain.splitlines()
    async with frame_ctx.db.session() as session:
        session.add(Token(mint="NewMint", status="monitoring", status_since=NOW, discovered_at=NOW))
        await session.commit()
    frame_ctx.clock.advance(5)
    answer = await press(fake, VIEWER, VIEWER, msg.message_id, buttons(msg)["🔄 Refresh"])
    assert answer["text"] == "Refreshed."
    assert len(fake.sent(VIEWER)) == 1  # no new message: the same one was edited
    assert "Tokens: monitoring 1 · active 0 · archived 0" in fake.sent(VIEWER)[0].plain.splitlines()
    assert len(msg.edits) == 1


async def test_refresh_without_changes_is_answered_quietly(fake, running_bot):
    msg = await say(fake, VIEWER, VIEWER, "/status")
    answer = await press(fake, VIEWER, VIEWER, msg.message_id, buttons(msg)["🔄 Refresh"])
    assert answer["text"] == "Already up to date."
    assert msg.edits == []


async def test_jobs_lists_the_scheduler_jobs(fake, running_bot):
    msg = await say(fake, ADMIN, ADMIN, "/jobs")
    assert "pipeline.probe" in msg.plain
    assert "next in " in msg.plain and "last took —" in msg.plain
    assert "▶ pipeline.probe" in buttons(msg)
    viewer_msg = await say(fake, VIEWER, VIEWER, "/jobs")
    assert "▶ pipeline.probe" not in buttons(viewer_msg)  # viewers get no action buttons in private


async def test_admin_run_now_button_runs_the_job(fake, running_bot, frame_ctx):
    msg = await say(fake, ADMIN, ADMIN, "/jobs")
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["▶ pipeline.probe"])
    assert answer["text"] == "▶ pipeline.probe will run now."
    probe = frame_ctx.probe
    await fake.wait_for(lambda: probe.runs == 1, 5)


async def test_ping_answers_with_the_checklist(fake, running_bot):
    msg = await say(fake, VIEWER, VIEWER, "/ping")
    assert "checklist" in msg.plain
    assert "database: reachable, migrated" in msg.plain
    assert "telegram bot: @tokenwatch_test_bot" in msg.plain
    assert "alert chat: reachable" in msg.plain
    assert "📨 Send test message" not in buttons(msg)
    assert fake.sent(ALERT_CHAT) == []  # /ping never posts to the chats by itself


async def test_admin_sends_a_test_message_from_ping(fake, running_bot):
    msg = await say(fake, ADMIN, ADMIN, "/ping")
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["📨 Send test message"])
    assert answer["text"] == "Test message sent."
    assert "this is a test message" in fake.sent(ALERT_CHAT)[0].plain


async def test_unknown_command_points_to_help(fake, running_bot):
    msg = await say(fake, VIEWER, VIEWER, "/frobnicate now")
    assert msg.plain == "Unknown command. Send /help to see what you can use."


async def test_hostile_arguments_do_not_break_commands(fake, running_bot):
    hostile = "/status <b>&amp; \u202e" + "🚀" * 50 + "x" * 200
    msg = await say(fake, VIEWER, VIEWER, hostile)
    assert "tokenwatch status" in msg.plain
    assert running_bot.dp["parts"].errors == 0


async def test_ping_lists_redis_as_not_configured_without_redis_url(fake, running_bot, frame_ctx):
    assert frame_ctx.settings.redis_url is None
    msg = await say(fake, VIEWER, VIEWER, "/ping")
    assert "✅ redis: not configured (REDIS_URL is unset): running without it" in msg.plain
    assert "all checks passed" in msg.plain  # running without Redis is allowed, not a failure


async def test_help_says_stuck_also_lists_active_tokens_with_failing_fetches(fake, running_bot):
    msg = await say(fake, VIEWER, VIEWER, "/help")
    line = next(line for line in msg.plain.splitlines() if line.startswith("/stuck"))
    assert "monitored/active with fetches failing in a row" in line
