"""/jobs shows the supervised loops beside the scheduler's jobs, through the real bot over HTTP:
state, restarts, last error (escaped); an admin's ↻ button restarts a loop, a viewer's press
changes nothing, an expired button does nothing."""
from __future__ import annotations

import asyncio

import pytest

from app.backoff import Backoff
from app.supervisor import LoopSpec, Supervisor
from bot.runner import POLLING_LOOP, BotRunner
from tests.bot.frame_fixtures import *  # noqa: F403
from tests.bot.frame_fixtures import ADMIN, ALERT_CHAT, GROUP_MEMBER, VIEWER, buttons, press, say

HOSTILE = "<b>bad</b> & \u202e🚀"


class LoopProbe:
    """A supervised loop that records its starts."""

    def __init__(self) -> None:
        self.starts = 0

    async def __call__(self) -> None:
        self.starts += 1
        await asyncio.Event().wait()


async def broken() -> None:
    raise ValueError(HOSTILE)


@pytest.fixture
async def supervised(fake, frame_ctx):
    """The bot's polling and two test loops on one supervisor, as the service runs them."""
    runner = BotRunner(frame_ctx, polling_timeout=1)
    await runner.prepare()
    probe = LoopProbe()
    supervisor = Supervisor(frame_ctx.clock, watchdog_interval_s=None)
    supervisor.add_all(runner.loops())
    supervisor.add(LoopSpec("test.probe", probe, heartbeat_budget_s=60))
    supervisor.add(LoopSpec("test.broken", broken, backoff=Backoff(base_s=3600, max_s=3600, jitter_low=1.0)))
    frame_ctx.supervisor = supervisor
    await supervisor.start()
    await fake.wait_for(lambda: probe.starts == 1 and supervisor.get("test.broken").state == "restarting", 5)
    yield supervisor, probe
    await supervisor.stop()
    await runner.stop()


async def test_jobs_shows_loops_beside_jobs(fake, supervised):
    supervisor, _ = supervised
    msg = await say(fake, ADMIN, ADMIN, "/jobs")
    text = msg.plain
    assert "pipeline.probe" in text and "every 3600s" in text  # the scheduler's job is still there
    loops = text[text.index("Loops (3)"):]
    assert f"{POLLING_LOOP} — running for" in loops
    assert "test.probe — running for" in loops and "last beat now (budget 1m 00s)" in loops
    assert "test.broken — restarting in 1h 00m" in loops
    assert f"last error (now): ValueError: {HOSTILE}" in loops  # shown as text, not as markup
    assert "&lt;b&gt;bad&lt;/b&gt; &amp;" in msg.text  # the raw HTML escapes it
    kb = buttons(msg)
    assert {"↻ test.probe", "↻ test.broken", f"↻ {POLLING_LOOP}", "▶ pipeline.probe"} <= set(kb)
    viewer = await say(fake, VIEWER, VIEWER, "/jobs")
    assert "test.probe" in viewer.plain and not [b for b in buttons(viewer) if b.startswith("↻")]


async def test_admin_restarts_a_loop_by_button(fake, supervised):
    supervisor, probe = supervised
    msg = await say(fake, ADMIN, ADMIN, "/jobs")
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["↻ test.probe"])
    assert answer["text"] == "↻ test.probe is restarting."
    await fake.wait_for(lambda: probe.starts == 2, 5)
    assert supervisor.get("test.probe").restarts == 1
    # a restart of a loop waiting out its backoff starts it now
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["↻ test.broken"])
    assert answer["text"] == "↻ test.broken is restarting."
    await fake.wait_for(lambda: supervisor.get("test.broken").failures == 2, 5)


async def test_admin_restarts_telegram_polling_and_the_bot_still_answers(fake, supervised):
    supervisor, _ = supervised
    msg = await say(fake, ADMIN, ADMIN, "/jobs")
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)[f"↻ {POLLING_LOOP}"])
    assert answer["text"] == f"↻ {POLLING_LOOP} is restarting."
    await fake.wait_for(lambda: supervisor.get(POLLING_LOOP).restarts == 1, 5)
    reply = await say(fake, VIEWER, VIEWER, "/start")
    assert "Your role: viewer" in reply.plain


async def test_viewers_press_on_restart_changes_nothing(fake, supervised):
    supervisor, probe = supervised
    jobs = await say(fake, ALERT_CHAT, ADMIN, "/jobs@tokenwatch_test_bot")
    for user in (VIEWER, GROUP_MEMBER):
        answer = await press(fake, ALERT_CHAT, user, jobs.message_id, buttons(jobs)["↻ test.probe"])
        assert answer["text"] == "Only admins can do that."
    await asyncio.sleep(0)
    assert probe.starts == 1 and supervisor.get("test.probe").restarts == 0


async def test_expired_restart_button_does_nothing(fake, supervised, frame_ctx):
    supervisor, probe = supervised
    msg = await say(fake, ADMIN, ADMIN, "/jobs")
    frame_ctx.clock.advance(2 * 3600)
    answer = await press(fake, ADMIN, ADMIN, msg.message_id, buttons(msg)["↻ test.probe"])
    assert "expired" in answer["text"] and "/jobs" in answer["text"]
    assert probe.starts == 1 and supervisor.get("test.probe").restarts == 0


async def test_console_restarting_its_own_loop_answers_first(console_ctx, tmp_path):
    """In the console chat the ↻ press runs inside the loop it restarts: the answer still shows."""
    import io

    from bot.console import ConsoleChat

    out = io.StringIO()
    console = ConsoleChat(console_ctx, out=out, interactive=True, photo_dir=tmp_path / "console")
    runs = 0

    async def console_loop() -> None:  # stands for console.run(): the press is handled in this task
        nonlocal runs
        runs += 1
        if runs == 1:
            await console.handle_line("/jobs")
            text = out.getvalue()
            number = next(cell[1:cell.index("]")] for line in text.splitlines() for cell in line.split("  ")
                          if cell.startswith("[") and "↻ bot.console" in cell)
            await console.handle_line(number)
        await asyncio.Event().wait()

    supervisor = Supervisor(console_ctx.clock, watchdog_interval_s=None)
    supervisor.add(LoopSpec("bot.console", console_loop))
    console_ctx.supervisor = supervisor
    await supervisor.start()
    try:
        async with asyncio.timeout(5):
            while runs < 2:
                await asyncio.sleep(0)
    finally:
        await supervisor.stop()
        await console.close()
    assert "bot.console is restarting." in out.getvalue()
    assert supervisor.get("bot.console").restarts == 1
