"""The console chat as a new operator meets it: Ctrl-D, plain text, /help's examples, /start's
ids, and button numbers that survive a Refresh."""
from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.console import PLAIN_TEXT_HINT, ConsoleChat
from tokens.models import Token

ROOT = Path(__file__).resolve().parents[2]
MINT = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"


@pytest.fixture
async def chat(console_ctx, tmp_path):
    console = ConsoleChat(console_ctx, out=io.StringIO(), interactive=True, photo_dir=tmp_path / "console")
    yield console
    await console.close()


def out(chat: ConsoleChat) -> str:
    return chat.printer.out.getvalue()  # type: ignore[attr-defined]


def button_number(text: str, label: str) -> int:
    numbers = re.findall(rf"\[(\d+)\] {re.escape(label)}", text)
    assert numbers, f"no button {label!r} in:\n{text}"
    return int(numbers[-1])


async def add_token(ctx, mint: str, status: str = "monitoring") -> None:
    async with ctx.db.session() as session:
        session.add(Token(mint=mint, status=status, status_since=0.0, discovered_at=0.0))
        await session.commit()


async def test_refresh_keeps_the_button_number(chat, console_ctx):
    await chat.handle_line("/status")
    first = button_number(out(chat), "🔄 Refresh")
    await add_token(console_ctx, MINT)
    await chat.handle_line(str(first))
    edited = out(chat).rsplit("(edited)", 1)[1]
    assert "monitoring 1" in edited
    assert button_number(edited, "🔄 Refresh") == first
    await add_token(console_ctx, MINT[:-1] + "j")
    await chat.handle_line(str(first))  # the same number still presses Refresh
    assert "monitoring 2" in out(chat).rsplit("(edited)", 1)[1]
    assert "no button" not in out(chat)


async def test_plain_text_gets_a_one_line_hint(chat):
    await chat.handle_line("status please")
    assert out(chat) == PLAIN_TEXT_HINT + "\n"
    assert "/help" in PLAIN_TEXT_HINT and "start with /" in PLAIN_TEXT_HINT


async def test_help_token_example_uses_a_tracked_mint(chat, console_ctx):
    await chat.handle_line("/help")
    assert "e.g. /token <mint>" in out(chat)
    assert "So11111111111111111111111111111111111111112" not in out(chat)
    await add_token(console_ctx, MINT, "active")
    await chat.handle_line("/help")
    assert f"e.g. /token {MINT}" in out(chat).rsplit("Commands", 1)[1]


async def test_start_shows_the_user_id(chat):
    await chat.handle_line("/start")
    assert "Your user id: 1000." in out(chat)


async def test_eof_says_it_stops_and_stops(chat):
    stops: list[str] = []
    chat.on_eof = lambda: stops.append("stop")
    await chat.run(io.StringIO("/start\n"))
    assert out(chat).rstrip().endswith("stdin closed: stopping")
    assert stops == ["stop"]


async def test_eof_of_another_stream_only_ends_the_chat(chat):
    await chat.run(io.StringIO(""))
    assert out(chat).rstrip().endswith("input closed: the console chat stops reading; tokenwatch goes on")


def test_ctrl_d_at_the_terminal_stops_tokenwatch(tmp_path):
    """The real command in a pseudo-terminal: Ctrl-D prints what it does and the service exits 0."""
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT), STATUS_LINE="false", HTTP_PORT="0", SIM_SEED="1",
               DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/tw.db")
    env.pop("TELEGRAM_BOT_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-c", "from tokenwatch.cli import main; raise SystemExit(main(['run']))"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 90
        while b"tokenwatch console:" not in seen and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                seen += os.read(proc.stdout.fileno(), 65536)  # type: ignore[union-attr]
        assert b"tokenwatch console:" in seen, seen.decode(errors="replace")
        os.write(master, b"\x04")  # Ctrl-D at the start of a line: EOF
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = (seen + rest).decode(errors="replace")
    assert proc.returncode == 0, text
    assert "stdin closed: stopping" in text
    assert "Traceback" not in text
