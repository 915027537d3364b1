"""Settings: defaults are the embedded setup; an invalid value stops the start with one clear line."""
from __future__ import annotations

import subprocess
import sys

import pytest

from app.settings import SettingsError, load_settings


def test_defaults_are_the_embedded_setup(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    s = load_settings()
    assert s.market == "sim" and s.is_sqlite and s.redis_url is None and s.telegram_bot_token is None
    assert s.effective_api_rate_per_min < s.api_rate_limit_per_min


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("HOT_CHECK_INTERVAL_S", "-3", "HOT_CHECK_INTERVAL_S"),
        ("MARKET", "moon", "MARKET"),
        ("TELEGRAM_ADMIN_IDS", "12,abc", "TELEGRAM_ADMIN_IDS"),
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "TELEGRAM_BOT_TOKEN"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("BATCH_SIZE", "31", "BATCH_SIZE"),
    ],
)
def test_invalid_value_names_the_setting(monkeypatch, tmp_path, env, value, named):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert named in message and "\n" not in message


def test_lists_parse_from_comma_separated(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_ADMIN_IDS", "1, 2,3")
    monkeypatch.setenv("PUMP_DEX_IDS", "pumpswap, pumpfun-amm")
    s = load_settings()
    assert s.telegram_admin_ids == [1, 2, 3]
    assert s.pump_dex_ids == ["pumpswap", "pumpfun-amm"]


def test_cli_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "tokenwatch.cli", "migrate"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parents[1]),
             "COLD_CHECK_INTERVAL_S": "abc"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "COLD_CHECK_INTERVAL_S" in lines[0]


def test_every_setting_is_in_env_example():
    from pathlib import Path

    from app.settings import Settings

    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    # a setting may be documented commented out ("# HTTP_HOST=..."), so that its default applies
    names = {line.removeprefix("# ").split("=", 1)[0].strip() for line in example.splitlines()
             if "=" in line and (not line.startswith("#") or line[2:3].isupper())}
    missing = {f.upper() for f in Settings.model_fields} - names
    assert not missing, f"settings missing from .env.example: {sorted(missing)}"


def test_env_example_copied_to_env_starts_with_the_defaults(monkeypatch, tmp_path):
    from pathlib import Path

    from app.settings import Settings

    example = Path(__file__).resolve().parents[1] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    monkeypatch.chdir(tmp_path)
    from_file = load_settings()
    defaults = Settings(_env_file=None)
    differing = {name for name in Settings.model_fields if getattr(from_file, name) != getattr(defaults, name)}
    assert not differing, f".env.example disagrees with the defaults for {sorted(differing)}"


def test_empty_value_means_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.setenv("TELEGRAM_ALERT_CHAT_ID", "")
    s = load_settings()
    assert s.redis_url is None and s.telegram_alert_chat_id is None
