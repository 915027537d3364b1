"""Discovery from DexScreener's latest token profiles (``GET /token-profiles/latest/v1``).

Polled every ``PROFILES_POLL_INTERVAL_S`` under its own limiter (60 requests/min on the
real API); entries with ``chainId == "solana"`` give ``tokenAddress``::

    poller = ProfilesPoller(client, intake)
    new = await poller.poll_once()      # the ``pipeline.profiles`` job
"""
from __future__ import annotations

import logging

from tokens.dexscreener import DexScreenerClient, FetchError
from tokens.intake import TokenIntake

log = logging.getLogger(__name__)

SOURCE = "dexscreener_profiles"


class ProfilesPoller:
    """Turns new Solana profiles into tokens; failures are counted, never raised.

        poller = ProfilesPoller(client, intake)
        await poller.poll_once()
    """

    def __init__(self, client: DexScreenerClient, intake: TokenIntake) -> None:
        self.client = client
        self.intake = intake
        self.polls = 0
        self.failures = 0
        self.last_error: str | None = None

    async def poll_once(self) -> int:
        self.polls += 1
        try:
            addresses = await self.client.fetch_profiles()
        except FetchError as exc:
            self.failures += 1
            if self.last_error is None:
                log.warning("token profiles unavailable: %s", exc)
            self.last_error = str(exc)
            return 0
        if self.last_error is not None:
            log.info("token profiles available again")
            self.last_error = None
        new = 0
        for address in addresses:
            if await self.intake.add(address, source=SOURCE):
                new += 1
        return new
