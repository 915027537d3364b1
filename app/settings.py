"""Settings, read from environment variables and ``.env``.

Every field here has a line in ``.env.example``. Field names map to
upper-case environment variables (``database_url`` <- ``DATABASE_URL``).

    settings = load_settings()          # raises SettingsError with one clear line
    settings = Settings(market="sim")   # in tests: override by keyword
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IdList = Annotated[list[int], NoDecode]
StrList = Annotated[list[str], NoDecode]


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FIND_YOUR_ID = ("message @userinfobot (it replies with your id), or send /start to your bot and find "
                "'from user <id>' in tokenwatch's log; then run `tokenwatch doctor`")


class SettingsError(Exception):
    """An invalid setting; the message is one line naming the setting."""


class Settings(BaseSettings):
    # env_ignore_empty: `NAME=` (as in .env.example) means "use the default", not "the empty string"
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # --- core -------------------------------------------------------------
    database_url: str = "sqlite+aiosqlite:///./data/tokenwatch.db"
    redis_url: str | None = None
    market: Literal["sim", "live"] = "sim"
    dexscreener_base_url: str = "https://api.dexscreener.com"
    pumpportal_ws_url: str = "wss://pumpportal.fun/api/data"
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    status_line: bool = True

    # --- pipeline: scheduling and the API budget --------------------------
    hot_check_interval_s: float = Field(default=10.0, gt=0)
    cold_check_interval_s: float = Field(default=45.0, gt=0)
    hot_score_threshold: float = 50.0
    fresh_hot_s: float = Field(default=120.0, ge=0)
    batch_size: int = Field(default=30, ge=1, le=30)
    fetch_concurrency: int = Field(default=4, ge=1, le=64)
    api_rate_limit_per_min: int = Field(default=300, ge=1)
    api_rate_headroom: float = Field(default=0.97, gt=0, le=1)
    profiles_rate_limit_per_min: int = Field(default=60, ge=1)
    profiles_poll_interval_s: float = Field(default=10.0, gt=0)
    api_timeout_s: float = Field(default=10.0, gt=0)
    process_interval_s: float = Field(default=1.0, gt=0)
    ws_reconnect_min_s: float = Field(default=0.5, gt=0)
    ws_reconnect_max_s: float = Field(default=30.0, gt=0)

    # --- several processes: the shared API limit and leases (tokens/shared_limit.py) ---
    egress_id: str = Field(default="default", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    cluster_size_hint: int = Field(default=1, ge=1, le=1000)
    check_lease_s: float | None = Field(default=None, gt=0)

    # --- market APIs: circuit breakers and adaptive timeouts (issue 9) -----
    breaker_window_s: float = Field(default=30.0, gt=0)
    breaker_min_calls: int = Field(default=10, ge=1)
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_slow_call_s: float = Field(default=10.0, gt=0)
    breaker_open_max_s: float = Field(default=20.0, gt=0, le=600)
    rto_min_s: float = Field(default=2.0, gt=0)
    rto_max_s: float = Field(default=30.0, gt=0, le=600)
    pool_cache_slow_s: float = Field(default=30.0, ge=0)

    # --- pipeline: scoring and lifecycle ----------------------------------
    score_ewma_alpha: float = Field(default=0.3, gt=0, le=1)
    min_score: float = 20.0
    monitoring_timeout_h: float = Field(default=12.0, gt=0)
    low_score_timeout_h: float = Field(default=12.0, gt=0)
    stale_data_s: float = Field(default=600.0, gt=0)
    retention_days: float = Field(default=7.0, gt=0)

    # --- activation rules --------------------------------------------------
    activation_min_liquidity_usd: float = Field(default=200.0, ge=0)
    pump_dex_ids: StrList = ["pumpfun-amm", "pumpfun", "pumpswap"]
    pump_quote_symbols: StrList = ["SOL"]
    external_quote_symbols: StrList = ["SOL", "USDC"]

    # --- local market (MARKET=sim) -----------------------------------------
    sim_host: str = "127.0.0.1"
    sim_port: int = Field(default=0, ge=0, le=65535)
    sim_seed: int | None = None
    sim_migration_interval_s: float = Field(default=3.0, gt=0)
    sim_rate_limit_per_min: int = Field(default=300, ge=1)
    sim_scenario: str | None = None

    # --- Telegram ------------------------------------------------------------
    telegram_bot_token: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    telegram_alert_chat_id: int | None = None
    telegram_escalation_chat_id: int | None = None
    telegram_admin_ids: IdList = []
    telegram_viewer_ids: IdList = []
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_webhook_port: int = Field(default=8081, ge=0, le=65535)
    command_rate_limit_per_min: int = Field(default=20, ge=1)
    outbox_global_per_s: float = Field(default=30.0, gt=0)
    outbox_chat_per_s: float = Field(default=1.0, gt=0)
    outbox_group_per_min: float = Field(default=20.0, gt=0)
    telegram_outage_fallback_after_s: float = Field(default=300.0, gt=0)
    outbox_retention_h: float = Field(default=168.0, gt=0)
    fallback_webhook_url: str | None = None

    # --- monitoring ----------------------------------------------------------
    collect_interval_s: float = Field(default=10.0, gt=0)
    stuck_after_s: float = Field(default=180.0, gt=0)
    stuck_failure_streak: int = Field(default=3, ge=1)
    stall_intervals: int = Field(default=3, ge=1)
    activation_window_h: float = Field(default=1.0, gt=0)
    rate_window_s: float = Field(default=60.0, gt=0, le=3600)
    discrepancy_liquidity_share: float = Field(default=0.2, gt=0)
    discrepancy_budget_share: float = Field(default=0.03, gt=0, le=0.2)
    metrics_raw_retention_h: float = Field(default=6.0, gt=0)
    metrics_1m_retention_d: float = Field(default=2.0, gt=0)
    metrics_1h_retention_d: float = Field(default=30.0, gt=0)

    # --- pictures (/graph, /dashboard) ------------------------------------------
    dashboard_refresh_s: float = Field(default=30.0, ge=5)
    graph_backlog_limit: float = Field(default=500.0, gt=0)
    graph_render_processes: int = Field(default=1, ge=1, le=8)
    graph_render_queue: int = Field(default=8, ge=1, le=100)

    # --- alerts (maintenance, silences, tuning) ---------------------------------
    alert_silence_max_s: float = Field(default=7 * 86400.0, ge=60)
    alert_silence_reminder_s: float = Field(default=300.0, gt=0)
    alert_maintenance_max_s: float = Field(default=86400.0, ge=60)
    alert_quiet_tick_s: float = Field(default=5.0, gt=0)
    alert_tune_percentile: float = Field(default=0.99, gt=0.5, lt=1)
    alert_tune_min_history_h: float = Field(default=24.0, gt=0)
    alert_autotune_interval_s: float = Field(default=3600.0, gt=0)
    alert_autotune_min_fires: int = Field(default=5, ge=1)
    alert_autotune_window_h: float = Field(default=24.0, gt=0)
    alert_autotune_unattended_share: float = Field(default=0.8, ge=0, le=1)
    alert_autotune_step: float = Field(default=0.5, gt=0, le=1)
    alert_autotune_cooldown_h: float = Field(default=24.0, ge=0)
    # --- alerts (watching the watcher, digests) --------------------------------
    heartbeat_url: str | None = None
    heartbeat_s: float = Field(default=60.0, ge=5)
    heartbeat_timeout_s: float = Field(default=10.0, gt=0, le=60)
    digest_cron: str = "0 9 * * *"
    digest_hours: float = Field(default=24.0, gt=0, le=24 * 31)

    # --- alerts (engine) --------------------------------------------------------
    alert_tick_s: float = Field(default=2.0, gt=0, le=30)
    alert_ack_timeout_s: float = Field(default=3600.0, gt=0)
    alert_escalation_info: str = ""
    alert_escalation_warning: str = "15m:chat,30m:dm,60m:escalation_chat,90m:webhook"
    alert_escalation_critical: str = "5m:chat,10m:dm,20m:escalation_chat,30m:webhook"
    escalation_webhook_url: str | None = None
    alert_flap_changes: int = Field(default=4, ge=2)
    alert_flap_window_s: float = Field(default=600.0, gt=0)
    alert_flap_settle_s: float = Field(default=300.0, gt=0)
    alert_repeat_fires: int = Field(default=5, ge=2)
    alert_repeat_window_s: float = Field(default=3600.0, gt=0)

    # --- recovery (the action ledger and its announcements) ---------------------
    recovery_ledger_flush_s: float = Field(default=5.0, gt=0, le=300)
    recovery_ledger_queue_max: int = Field(default=10_000, ge=100)
    recovery_outcome_after_s: float = Field(default=300.0, gt=0)
    recovery_announce_window_s: float = Field(default=300.0, ge=0)

    # --- scheduler ------------------------------------------------------------
    job_misfire_grace_s: int = Field(default=30, ge=1)
    job_budget_s: float = Field(default=60.0, gt=0)
    watchdog_max_skips: int = Field(default=20, ge=0)
    watchdog_restarts_per_hour: int = Field(default=3, ge=0)

    # --- recovery: database (recovery/slow_queries.py) ---------------------------
    db_slow_query_s: float = Field(default=0.5, ge=0)
    db_pool_min: int = Field(default=5, ge=1)
    db_pool_max: int = Field(default=30, ge=1)

    # --- recovery: memory (recovery/memory.py) -----------------------------------
    memory_warn_share: float = Field(default=0.80, ge=0.7, le=0.9)
    memory_critical_share: float = Field(default=0.92, ge=0.85, le=0.97)
    memory_sample_s: float = Field(default=10.0, gt=0)
    memory_baseline_s: float = Field(default=30.0, gt=0)
    memory_leak_window_s: float = Field(default=600.0, ge=60)
    memory_leak_min_mib_per_min: float = Field(default=1.0, gt=0)
    memory_diagnose_s: float = Field(default=90.0, gt=0)

    # --- several processes: leadership and the process registry ---------------
    leader_lease_s: float = Field(default=10.0, ge=1, le=300)
    leader_renew_s: float = Field(default=3.0, gt=0)
    process_heartbeat_s: float = Field(default=5.0, gt=0, le=300)

    # --- alerts (rules) -------------------------------------------------------
    alert_rules_file: str = ""  # empty: the shipped alerts/default_rules.toml

    @field_validator("heartbeat_url", mode="before")
    @classmethod
    def _heartbeat_url(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
            if value is not None and not re.match(r"https?://[^/\s]+", value):
                raise ValueError("want an http(s) URL: a Healthchecks.io ping URL (https://hc-ping.com/<uuid>) "
                                 "or an Uptime Kuma push URL (https://kuma.example/api/push/<token>)")
        return value

    @field_validator("digest_cron")
    @classmethod
    def _digest_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a crontab expression (five fields: minute hour day month "
                             f"weekday, e.g. '0 9 * * *'): {exc}") from None
        return " ".join(value.split())

    @field_validator("telegram_admin_ids", "telegram_viewer_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part for part in value.replace(" ", "").split(",") if part]
            for part in parts:
                if not re.fullmatch(r"-?\d+", part):
                    raise ValueError(f"{part[:40]!r} is not a numeric user id; Telegram ids are numbers like "
                                     f"123456789 (not @usernames): {FIND_YOUR_ID}")
            return [int(part) for part in parts]
        return value

    @field_validator("telegram_alert_chat_id", "telegram_escalation_chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: object) -> object:
        if isinstance(value, str) and value.strip() and not re.fullmatch(r"-?\d+", value.strip()):
            raise ValueError(f"{value.strip()[:40]!r} is not a numeric chat id; a group's id looks like "
                             "-1001234567890: add the bot to the group, send /start there and find 'in chat <id>' in "
                             "tokenwatch's log")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        if isinstance(value, str):
            level = value.strip().upper()
            if level not in LOG_LEVELS:
                raise ValueError(f"{value.strip()[:20]!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
            return level
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if scheme not in ("redis", "rediss", "unix"):
            shown = f"scheme {scheme!r}" if scheme else "no scheme"
            raise ValueError(f"has {shown}; use redis://host:6379/0 (or rediss://, unix://), "
                             "or leave it empty to run without Redis")
        return value

    @field_validator("pump_dex_ids", "pump_quote_symbols", "external_quote_symbols", mode="before")
    @classmethod
    def _split_strs(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        head, sep, tail = value.partition(":")
        if not sep or not head.isdigit() or not tail:
            raise ValueError("must look like <digits>:<secret> as given by @BotFather")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_shape(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("must be 1-256 characters of A-Z a-z 0-9 _ - (Telegram's secret_token rules)")
        return value

    @field_validator("database_url")
    @classmethod
    def _db_driver(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value[len("sqlite:///"):]
        if not (value.startswith("postgresql+asyncpg://") or value.startswith("sqlite+aiosqlite://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @model_validator(mode="after")
    def _check_ranges(self) -> "Settings":
        if self.hot_check_interval_s > self.cold_check_interval_s:
            raise ValueError("HOT_CHECK_INTERVAL_S must not exceed COLD_CHECK_INTERVAL_S")
        if self.ws_reconnect_min_s > self.ws_reconnect_max_s:
            raise ValueError("WS_RECONNECT_MIN_S must not exceed WS_RECONNECT_MAX_S")
        if self.leader_renew_s * 2 > self.leader_lease_s:
            raise ValueError("LEADER_RENEW_S must be at most half of LEADER_LEASE_S (a third is the usual choice)")
        if self.telegram_webhook_url and not self.telegram_webhook_secret:
            raise ValueError("TELEGRAM_WEBHOOK_URL requires TELEGRAM_WEBHOOK_SECRET (1-256 of A-Z a-z 0-9 _ -)")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def effective_api_rate_per_min(self) -> float:
        """Requests per minute the client allows itself: under the API's limit."""
        return self.api_rate_limit_per_min * self.api_rate_headroom

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        raw = self.database_url.split(":///", 1)[1]
        return None if raw in ("", ":memory:") else Path(raw)


def load_settings(**overrides: object) -> Settings:
    """Build settings; an invalid value raises ``SettingsError`` naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(part) for part in err.get("loc", ()) if part]
        name = loc[0].upper() if loc else "settings"
        msg = err.get("msg", "invalid value").removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {name}: {msg}") from None
