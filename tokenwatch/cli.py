"""The ``tokenwatch`` command line.

    tokenwatch run            # the service (embedded default: SQLite + local market + console chat)
    tokenwatch simulate       # the local market alone, on SIM_HOST:SIM_PORT
    tokenwatch migrate [rev]  # apply database migrations (default: head)
    tokenwatch doctor         # check a deployment's configuration, print a checklist
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from app.logging import setup_logging
from app.settings import Settings, SettingsError, load_settings


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"tokenwatch: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tokenwatch", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the service")
    sub.add_parser("simulate", help="run the local market (DexScreener + PumpPortal on loopback)")
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("revision", nargs="?", default="head")
    mig.add_argument("--down", action="store_true", help="downgrade to REVISION instead")
    sub.add_parser("doctor", help="check the configuration and print a checklist")
    args = parser.parse_args(argv)

    settings = _settings_or_exit()
    setup_logging(settings.log_format, settings.log_level)

    try:
        if args.command == "run":
            from tokenwatch.service import run_service

            asyncio.run(run_service(settings))
            return 0
        if args.command == "simulate":
            from simulator.server import run_standalone

            asyncio.run(run_standalone(settings))
            return 0
        if args.command == "migrate":
            from app.db import Database
            from app.migrate import downgrade_sync, upgrade_sync

            Database.from_settings(settings)  # creates ./data for SQLite
            (downgrade_sync if args.down else upgrade_sync)(settings.database_url, args.revision)
            print(f"database at {'base' if args.down and args.revision == 'base' else args.revision}")
            return 0
        if args.command == "doctor":
            from bot.doctor import doctor_main

            return asyncio.run(doctor_main(settings))
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
