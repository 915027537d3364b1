"""What an operator sees when tokenwatch cannot start: one line on stderr naming the setting
and a fix, a non-zero exit code, never a traceback.

Each case runs the real command line in a subprocess, in an empty directory (no ``.env``),
with the one bad setting.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings
from app.startup_errors import explain
from tests.conftest import PG_BASE_URL, unavailable
from tokenwatch.cli import confirm_downgrade

ROOT = Path(__file__).resolve().parent.parent


def tokenwatch(tmp_path: Path, *args: str, stdin: str | None = "", **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TELEGRAM_", "DATABASE_", "REDIS_", "HTTP_", "LOG_", "SIM_", "MARKET"))}
    clean.update(PYTHONPATH=str(ROOT), STATUS_LINE="false", SIM_SEED="1", **env)
    clean.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/tw.db")
    clean.setdefault("HTTP_PORT", "0")  # another service on this machine may hold 8080
    code = f"from tokenwatch.cli import main; raise SystemExit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=clean, input=stdin,
                          capture_output=True, text=True, timeout=90)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line, after checking the exit code and that nothing else was printed."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("tokenwatch: ")
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_postgresql_names_database_url_and_the_address(tmp_path):
    port = closed_port()
    line = one_line(tokenwatch(tmp_path, "run", DATABASE_URL=f"postgresql+asyncpg://u:secret@127.0.0.1:{port}/db"))
    assert line.startswith("tokenwatch: DATABASE_URL: cannot reach PostgreSQL at 127.0.0.1:")
    assert f":{port} (connection refused); is it running?" in line
    assert "secret" not in line


def test_missing_database_is_named_with_the_command_that_creates_it(tmp_path):
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError as exc:
        unavailable("PostgreSQL", exc)
    line = one_line(tokenwatch(tmp_path, "migrate", DATABASE_URL=f"{PG_BASE_URL}/tw_no_such_db_here"))
    assert "DATABASE_URL: database 'tw_no_such_db_here' does not exist on PostgreSQL at 127.0.0.1:5432" in line
    assert "createdb -h 127.0.0.1 -p 5432" in line


def test_unknown_host_is_named(tmp_path):
    line = one_line(tokenwatch(tmp_path, "migrate", DATABASE_URL="postgresql://u@nonexistent.invalid:5432/db"))
    assert "DATABASE_URL: cannot resolve the host 'nonexistent.invalid' of PostgreSQL" in line


def test_busy_http_port_is_named_with_the_setting_to_change(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line(tokenwatch(tmp_path, "run", HTTP_HOST="127.0.0.1", HTTP_PORT=str(port)))
    assert line == (f"tokenwatch: HTTP_PORT {port} is in use on 127.0.0.1 (another tokenwatch, or another "
                    "program); stop it or set HTTP_PORT= to a free port (0 = any free port)")
    assert not (tmp_path / "tw.db").exists()  # nothing started


@pytest.mark.parametrize("name, value, expected", [
    ("REDIS_URL", "garbage", "invalid setting REDIS_URL: has no scheme; use redis://host:6379/0"),
    ("LOG_LEVEL", "LOUD", "invalid setting LOG_LEVEL: 'LOUD' is not a log level; use one of DEBUG, INFO"),
    ("TELEGRAM_ADMIN_IDS", "@me", "invalid setting TELEGRAM_ADMIN_IDS: '@me' is not a numeric user id"),
    ("TELEGRAM_ALERT_CHAT_ID", "@mygroup", "invalid setting TELEGRAM_ALERT_CHAT_ID: '@mygroup' is not a numeric"),
])
def test_invalid_settings_are_one_line_naming_the_setting(tmp_path, name, value, expected):
    result = tokenwatch(tmp_path, "run", **{name: value})
    line = one_line(result)
    assert result.returncode == 2
    assert expected in line


def test_admin_ids_error_says_how_to_find_your_id(tmp_path):
    line = one_line(tokenwatch(tmp_path, "run", TELEGRAM_ADMIN_IDS="123, @me"))
    assert "@userinfobot" in line and "/start" in line and "from user <id>" in line and "tokenwatch doctor" in line
    assert "invalid literal" not in line


def test_log_level_is_case_insensitive_and_ids_still_parse():
    settings = Settings(log_level="debug", telegram_admin_ids="1, -2,3", redis_url="rediss://h:6380/1",
                        telegram_alert_chat_id="-1001234567890")
    assert settings.log_level == "DEBUG"
    assert settings.telegram_admin_ids == [1, -2, 3]
    assert settings.telegram_alert_chat_id == -1001234567890


def test_unknown_migration_revision_lists_the_known_ones(tmp_path):
    line = one_line(tokenwatch(tmp_path, "migrate", "nosuchrev"))
    assert line.startswith("tokenwatch: unknown migration revision 'nosuchrev': use head, base or one of 0001")


def test_downgrade_to_base_refuses_without_a_terminal_or_yes_and_keeps_the_data(tmp_path):
    assert tokenwatch(tmp_path, "migrate").returncode == 0
    line = one_line(tokenwatch(tmp_path, "migrate", "base", "--down", stdin=None))
    assert "erases data" in line and "--yes" in line
    with sqlite3.connect(tmp_path / "tw.db") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "tokens" in tables

    done = tokenwatch(tmp_path, "migrate", "base", "--down", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "database at base"
    with sqlite3.connect(tmp_path / "tw.db") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "tokens" not in tables


def test_downgrade_asks_at_a_terminal():
    settings = Settings(database_url="postgresql+asyncpg://u:pw@db:5432/tw")
    prompts: list[str] = []

    def answer(text: str):
        def ask(prompt: str) -> str:
            prompts.append(prompt)
            return text
        return ask

    assert confirm_downgrade(settings, "base", yes=False, ask=answer("yes"), interactive=True) is None
    assert "erases the data" in prompts[0] and "pw" not in prompts[0]
    assert confirm_downgrade(settings, "base", yes=False, ask=answer("n"), interactive=True) == \
        "downgrade cancelled; nothing changed"
    assert confirm_downgrade(settings, "base", yes=True, interactive=False) is None


def test_a_port_taken_after_the_check_is_still_named():
    # aiohttp's wording when the monitoring server cannot bind during start
    exc = OSError(98, "error while attempting to bind on address ('127.0.0.1', 18080): address already in use")
    line = explain(RuntimeError("start failed"), Settings())
    assert "LOG_LEVEL=DEBUG" in line  # unknown failures: type, message and where to see more
    wrapped = RuntimeError("start failed")
    wrapped.__cause__ = exc
    assert explain(wrapped, Settings(http_port=18080)).startswith("HTTP_PORT 18080 is in use on 127.0.0.1")


def test_version_and_help_read_cleanly(tmp_path):
    version = tokenwatch(tmp_path, "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("tokenwatch 0.") and "(Python 3." in version.stdout
    for args in (["--help"], ["migrate", "--help"], ["run", "--help"]):
        shown = tokenwatch(tmp_path, *args)
        assert shown.returncode == 0
        assert "``" not in shown.stdout and "usage: tokenwatch" in shown.stdout
