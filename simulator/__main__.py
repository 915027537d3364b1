"""``python -m simulator``: run the local market alone (same as ``tokenwatch simulate``)."""
from __future__ import annotations

import asyncio
import logging

from app.settings import load_settings
from simulator.server import run_standalone


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(run_standalone(settings))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
