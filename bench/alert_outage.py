"""The alert timing claims, measured in real time: the SHIPPED rules and default settings (only the
ports, the database file and Telegram's address change), the local market in-process, the fake Bot
API server.

    python bench/alert_outage.py                     # 2 min healthy, an outage of 3 min, 5 min after
    python bench/alert_outage.py --healthy-min 30    # the 30-minute healthy-run claim

Prints: alert messages sent during the healthy phase (aim 0), seconds from the outage's start to
the incident message reaching Telegram (aim <= 90), seconds from the market's recovery to the
resolved message (aim <= 30), alert messages in the minutes after the resolution (aim 0), and
every alert-chat message of the run (``--events``: the engine's timeline too).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import logging
import tempfile
import time
from pathlib import Path

from alerts.history import events_between
from app.settings import Settings
from simulator.telegram_api import FakeTelegram
from tokenwatch.service import Service

TOKEN = "123456:BENCH-alerts"
ADMIN, ALERT_CHAT = 111, -100500


def is_alert(text: str) -> bool:
    return not text.startswith(("🟢", "🔴 tokenwatch stopping"))


async def wait_for(predicate, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held, None when it did not within ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        await asyncio.sleep(0.2)
    return None


async def run(healthy_min: float, outage_min: float, after_min: float, show_events: bool) -> None:
    fake = FakeTelegram()          # Telegram's flood limits enforced
    await fake.start()
    fake.add_bot(TOKEN, "tokenwatch_bench_bot")
    fake.add_chat(ADMIN, "private")
    fake.add_chat(ALERT_CHAT, "supergroup", title="alerts", members=[ADMIN])
    tmp = Path(tempfile.mkdtemp(prefix="tw-alert-bench-"))
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp / 'tw.db'}", http_port=0,
                        status_line=False, telegram_bot_token=TOKEN, telegram_api_base=fake.base_url,
                        telegram_admin_ids=[ADMIN], telegram_alert_chat_id=ALERT_CHAT)
    service = Service(settings, console_input=False, console_out=io.StringIO())
    await service.start()
    assert service.market is not None
    alerts = lambda: [m for m in fake.sent(ALERT_CHAT) if is_alert(m.plain)]  # noqa: E731
    try:
        print(f"healthy for {healthy_min:g} min ...", flush=True)
        await asyncio.sleep(healthy_min * 60)
        healthy = alerts()
        print(f"alert messages during the healthy phase: {len(healthy)} (aim 0)", flush=True)
        before = len(healthy)
        outage_at = time.time()
        await service.market.apply_faults({"outage": True, "outage_mode": "503"})
        announced = await wait_for(lambda: any("Market API down" in m.plain for m in alerts()[before:]), 300)
        print(f"outage start -> incident message: {announced if announced is None else round(announced, 1)} s "
              "(aim <= 90)", flush=True)
        rest = outage_min * 60 - (announced or 0)
        if rest > 0:
            await asyncio.sleep(rest)
        count = len(alerts())
        await service.market.reset_faults()
        resolved = await wait_for(lambda: any(m.plain.startswith("✅ Resolved") for m in alerts()[count:]), 300)
        print(f"recovery -> resolved message: {resolved if resolved is None else round(resolved, 1)} s "
              "(aim <= 30)", flush=True)
        settled = len(alerts())
        await asyncio.sleep(after_min * 60)
        late = alerts()[settled:]
        print(f"alert messages in the {after_min:g} min after the resolution: {len(late)} (aim 0: nothing the "
              "outage left behind fires on its own)", flush=True)
        print("alert chat:")
        for m in alerts():
            print(f"  #{m.message_id} ({len(m.edits)} edits) {m.plain.splitlines()[0][:150]}")
        print(f"Telegram refused: {sum(1 for r in fake.refusals if not r.injected and r.status == 400)} messages")
        if show_events:
            print("engine timeline (seconds from the outage's start):")
            assert service.ctx is not None
            for e in await events_between(service.ctx.db, outage_at, time.time() + 1):
                print(f"  {e.at - outage_at:7.1f} {e.kind:<10} #{e.incident_id} {e.rule or '':<22} "
                      f"{'' if e.value is None else round(e.value, 3)} {(e.detail or '')[:90]}")
    finally:
        await service.stop()
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy-min", type=float, default=2.0, help="healthy phase, minutes (30 for the claim)")
    parser.add_argument("--outage-min", type=float, default=3.0, help="outage length, minutes")
    parser.add_argument("--after-min", type=float, default=5.0,
                        help="minutes to watch after the resolution (lagging windows drain)")
    parser.add_argument("--events", action="store_true", help="also print the engine's timeline of the run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.healthy_min, args.outage_min, args.after_min, args.events))


if __name__ == "__main__":       # the chart worker's process pool needs the main-module guard
    main()
