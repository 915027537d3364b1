"""The console chat: the same dispatcher driven by typed lines, output captured."""
from __future__ import annotations

import io
import logging

import pytest

from bot.console import ConsoleChat, ConsoleTransport
from bot.runner import BotRunner


@pytest.fixture
async def chat(console_ctx, tmp_path):
    out = io.StringIO()
    console = ConsoleChat(console_ctx, out=out, interactive=True, photo_dir=tmp_path / "console")
    yield console
    await console.close()


def _button(out: str, label: str) -> str:
    for line in reversed(out.splitlines()):
        for cell in line.split("  "):
            if cell.startswith("[") and label in cell:
                return cell[1:cell.index("]")]
    raise AssertionError(f"no button {label!r} in:\n{out}")


async def test_console_round_trip_with_buttons(chat, console_ctx):
    await chat.handle_line("/start")
    assert "Your role: admin" in chat.printer.out.getvalue()  # the console user is an admin
    await chat.handle_line("/status")
    out = chat.printer.out.getvalue()
    assert "tokenwatch status" in out and "monitoring 0" in out
    assert "<b>" not in out  # HTML is rendered as plain text
    await chat.handle_line(_button(out, "Refresh"))
    assert "Already up to date." in chat.printer.out.getvalue()
    await chat.handle_line("/jobs")
    await chat.handle_line(_button(chat.printer.out.getvalue(), "▶ pipeline.probe"))
    assert "pipeline.probe will run now." in chat.printer.out.getvalue()


async def test_console_refresh_edits_the_message(chat, console_ctx):
    from tokens.models import Token

    await chat.handle_line("/status")
    async with console_ctx.db.session() as session:
        session.add(Token(mint="M1", status="monitoring", status_since=0.0, discovered_at=0.0))
        await session.commit()
    await chat.handle_line(_button(chat.printer.out.getvalue(), "Refresh"))
    out = chat.printer.out.getvalue()
    assert "(edited)" in out and "monitoring 1" in out


async def test_console_reads_lines_from_a_stream(chat):
    await chat.run(io.StringIO("/help\n42\n\n"))
    out = chat.printer.out.getvalue()
    assert "Commands" in out and "/ping" in out
    assert "no button [42]" in out


async def test_console_transport_prints_alerts_and_saves_pictures(chat, tmp_path):
    transport = ConsoleTransport(chat)
    mid = await transport.send_text(-100500, "<b>ALERT</b> pool &amp; stuff",
                                    reply_markup={"inline_keyboard": [[{"text": "Ack", "callback_data": "zz:1"}]]})
    out = chat.printer.out.getvalue()
    assert "to chat -100500" in out and "ALERT pool & stuff" in out and "Ack" in out
    await transport.edit_text(-100500, mid, "<b>RESOLVED</b>")
    assert "RESOLVED" in chat.printer.out.getvalue()
    await transport.send_photo(-100500, b"\x89PNG fake", caption="chart")
    saved = list((tmp_path / "console").iterdir())
    assert len(saved) == 1 and saved[0].read_bytes() == b"\x89PNG fake"
    assert str(saved[0]) in chat.printer.out.getvalue()
    # pressing a button of an alert the handlers don't know gets the clear answer
    await chat.handle_line(_button(chat.printer.out.getvalue(), "Ack"))
    assert "unknown or has expired" in chat.printer.out.getvalue()


async def test_without_a_tty_the_console_logs_instead(console_ctx, caplog, tmp_path):
    out = io.StringIO()
    console = ConsoleChat(console_ctx, out=out, interactive=False, photo_dir=tmp_path)
    with caplog.at_level(logging.INFO, logger="bot.console"):
        await console.handle_line("/help")
    await console.close()
    assert out.getvalue() == ""
    assert any("would show" in r.message and "Commands" in r.message for r in caplog.records)


async def test_runner_without_token_uses_the_console(console_ctx):
    out = io.StringIO()
    runner = BotRunner(console_ctx, console_out=out, console_interactive=False)
    assert runner.mode == "console"
    await runner.start()
    try:
        transport = runner.transport()
        assert await transport.send_text(1, "hello") >= 1
        await runner.console.handle_line("/ping")
    finally:
        await runner.stop()
    assert runner.console.session.calls.get("SendMessage") == 1
