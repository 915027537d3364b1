"""The ``tokenwatch`` command line.

    tokenwatch run            # the service (embedded default: SQLite + local market + console chat);
                              # started several times: one leader, hot standbys (README "Several processes")
    tokenwatch worker         # the pipeline only (discovery intake and checks), never the singletons
    tokenwatch simulate       # the local market alone, on SIM_HOST:SIM_PORT
    tokenwatch migrate [rev]  # apply database migrations (default: head)
    tokenwatch doctor         # check a deployment's configuration, print a checklist
    tokenwatch --version

A start-up failure ends with one line on stderr naming the setting and a fix, and exit
code 1 (2 for an invalid setting or a refused confirmation); never a traceback (with
``LOG_LEVEL=DEBUG`` the traceback is logged too). ``run`` checks its ports and reaches and
migrates the database before it starts anything (``app/startup_errors.py``).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable

from app.build_info import build_info
from app.logging import setup_logging
from app.settings import Settings, SettingsError, load_settings
from app.startup_errors import StartupError, check_ports, explain, explain_database_error

log = logging.getLogger("tokenwatch")

DESCRIPTION = "tokenwatch: runs the Solana token pipeline and watches over it, from Telegram."
EPILOG = ("With no settings, run uses SQLite under ./data, the local market and a console chat.\n"
          "Settings come from environment variables and ./.env (every one is listed in .env.example);\n"
          "tokenwatch COMMAND --help describes a command.")


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"tokenwatch: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _fail(line: str, code: int = 1) -> int:
    print(f"tokenwatch: {line}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    info = build_info()
    parser = argparse.ArgumentParser(prog="tokenwatch", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"tokenwatch {info['version']} (Python {info['python']})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="run the service (several may run: one leads, the others stand by)")
    sub.add_parser("worker", help="run only the pipeline (discovery and checks) on a shared PostgreSQL",
                   description="Run only the pipeline: discovery intake and token checks, leased from the shared "
                               "database. A worker never polls Telegram, alerts or sends; run at least one "
                               "`tokenwatch run` beside it.")
    sub.add_parser("simulate", help="run the local market (DexScreener + PumpPortal on loopback)")
    mig = sub.add_parser("migrate", help="apply database migrations",
                         description="Apply database migrations (tokenwatch run also migrates at start).")
    mig.add_argument("revision", nargs="?", default="head", help="target revision (default: head; base = empty)")
    mig.add_argument("--down", action="store_true",
                     help="downgrade to REVISION instead; this erases the data of the dropped tables")
    mig.add_argument("--yes", action="store_true", help="do not ask before a downgrade (for scripts)")
    sub.add_parser("doctor", help="check the configuration and print a checklist")
    return parser


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return "DATABASE_URL"


def migrate_database(settings: Settings, revision: str = "head", *, down: bool = False) -> None:
    """Reach the database and migrate it; any failure becomes a ``StartupError`` of one line."""
    from app.migrate import downgrade_sync, upgrade_sync

    try:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        (downgrade_sync if down else upgrade_sync)(settings.database_url, revision)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - classified for the operator
        log.debug("migration failed", exc_info=True)
        raise StartupError(explain_database_error(exc, settings.database_url)) from exc


def confirm_downgrade(settings: Settings, revision: str, *, yes: bool,
                      ask: Callable[[str], str] | None = None, interactive: bool | None = None) -> str | None:
    """None if the downgrade may go ahead, else the one line that refuses it."""
    if yes:
        return None
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        return (f"migrate {revision} --down erases data in {_safe_url(settings.database_url)}; "
                "run it at a terminal to confirm, or add --yes")
    prompt = (f"This downgrades {_safe_url(settings.database_url)} to {revision} and erases the data "
              "of every table it drops. Type yes to go on: ")
    try:
        answer = (ask or input)(prompt)
    except EOFError:
        answer = ""
    if answer.strip().lower() != "yes":
        return "downgrade cancelled; nothing changed"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings_or_exit()
    setup_logging(settings.log_format, settings.log_level)

    try:
        if args.command in ("run", "worker"):
            check_ports(settings)
            migrate_database(settings)
            from tokenwatch.service import Role, run_service

            role: Role = "worker" if args.command == "worker" else "run"
            return _run_async(lambda: run_service(settings, role), settings)
        if args.command == "simulate":
            from simulator.server import run_standalone

            return _run_async(lambda: run_standalone(settings), settings)
        if args.command == "migrate":
            if args.down:
                refusal = confirm_downgrade(settings, args.revision, yes=args.yes)
                if refusal:
                    return _fail(refusal, 2)
            migrate_database(settings, args.revision, down=args.down)
            print(f"database at {'base' if args.down and args.revision == 'base' else args.revision}")
            return 0
        if args.command == "doctor":
            from bot.doctor import doctor_main

            return _run_async(lambda: doctor_main(settings), settings)
    except KeyboardInterrupt:
        return 130
    except StartupError as exc:
        return _fail(str(exc))
    return 1


def _run_async(make, settings: Settings) -> int:
    """``asyncio.run(make())``; an exception that ends it becomes one line (traceback logged at DEBUG)."""
    try:
        result = asyncio.run(make())
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the operator gets one line, not a traceback
        log.debug("tokenwatch failed", exc_info=True)
        return _fail(explain(exc, settings))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
