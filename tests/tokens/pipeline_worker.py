"""A pipeline-only process for the multi-process tests: checks due tokens until killed.

    python -m tests.tokens.pipeline_worker DATABASE_URL DEXSCREENER_URL LEASE_S [REDIS_URL]

Prints ``ready`` once its pipeline is built, then runs the processor every 0.2 s.
"""
from __future__ import annotations

import asyncio
import sys


async def main(db_url: str, market_url: str, lease_s: float, redis_url: str | None) -> None:
    from app.clock import SYSTEM_CLOCK
    from app.db import Database, make_engine
    from app.settings import Settings
    from tokens.pipeline import Pipeline

    settings = Settings(_env_file=None, database_url=db_url, redis_url=redis_url, check_lease_s=lease_s,
                        api_rate_limit_per_min=30_000, api_timeout_s=120.0, batch_size=30)
    db = Database(make_engine(db_url))
    async with Pipeline(settings, db, SYSTEM_CLOCK, market_url, "ws://127.0.0.1:9/unused", listen=False) as pipeline:
        assert pipeline.processor is not None
        print("ready", flush=True)
        while True:
            await pipeline.processor.run_once()
            await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None))
