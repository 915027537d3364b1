"""Discovery from DexScreener's latest token profiles (``GET /token-profiles/latest/v1``).

Polled every ``PROFILES_POLL_INTERVAL_S`` under its own limiter (60 requests/min on the
real API); entries with ``chainId == "solana"`` give ``tokenAddress``::

    poller = ProfilesPoller(client, intake)
    new = await poller.poll_once()      # the ``pipeline.profiles`` job

An address whose insert fails (database down) is kept in ``pending`` and retried first on the
next poll; the rest of the poll goes on. After ``MAX_INSERT_FAILURES_PER_POLL`` failures in one
poll the remaining addresses are queued without trying (the database is down: each attempt
would only wait out ``Database.run``'s retries). Discovery loses nothing.

Load shedding may slow the polls down: with ``set_every_s(30)`` a poll fetches only when 30 s
(less half a job interval) have passed since the last fetch; the others return at once.

Failures are logged on change of state (one WARNING when polls start failing, one INFO with
the count when they recover), not on every poll.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from app.clock import SYSTEM_CLOCK, Clock
from tokens.dexscreener import DexScreenerClient, FetchError
from tokens.failure_streak import FailureStreak
from tokens.intake import TokenIntake

log = logging.getLogger(__name__)

SOURCE = "dexscreener_profiles"
MAX_PENDING = 10_000
MAX_INSERT_FAILURES_PER_POLL = 3


class ProfilesPoller:
    """Turns new Solana profiles into tokens; failures are counted, never raised.

        poller = ProfilesPoller(client, intake)
        await poller.poll_once()
    """

    def __init__(self, client: DexScreenerClient, intake: TokenIntake, clock: Clock = SYSTEM_CLOCK, *,
                 interval_s: float = 10.0) -> None:
        self.client = client
        self.intake = intake
        self.clock = clock
        self.interval_s = interval_s  # how often the job calls poll_once
        self._every_s = interval_s
        self._last_fetch: float | None = None
        self.skipped = 0
        self.fetching = FailureStreak(log, "token profiles", unit="polls", clock=clock)
        self.storing = FailureStreak(log, "storing discovered profile tokens", unit="polls", clock=clock)
        self.polls = 0
        self.failures = 0
        self.insert_errors = 0
        self.last_error: str | None = None
        self._pending: OrderedDict[str, None] = OrderedDict()

    @property
    def pending(self) -> list[str]:
        """Addresses whose insert failed, oldest first (retried on the next poll)."""
        return list(self._pending)

    def every_s(self) -> float:
        """Seconds between fetches of the profiles (the job's interval unless slowed down)."""
        return self._every_s

    def set_every_s(self, seconds: float) -> None:
        self._every_s = max(self.interval_s, float(seconds))

    async def poll_once(self) -> int:
        """Retry pending addresses, then fetch and admit new profiles; returns tokens added
        (0 at once when slowed down and the next fetch is not due yet)."""
        now = self.clock.monotonic()
        slowed = self._every_s > self.interval_s
        if slowed and self._last_fetch is not None and now - self._last_fetch < self._every_s - self.interval_s / 2:
            self.skipped += 1
            return 0
        self._last_fetch = now
        self.polls += 1
        addresses: list[str] = []
        try:
            addresses = list(await self.client.fetch_profiles())
        except FetchError as exc:
            self.failures += 1
            self.fetching.failed(f"unavailable: {exc}")
            self.last_error = str(exc)
        else:
            self.fetching.succeeded()
            self.last_error = None
        return await self._admit_all([*self._pending, *addresses])

    async def _admit_all(self, addresses: list[str]) -> int:
        new = failed = 0
        first_error: BaseException | None = None
        for address in dict.fromkeys(addresses):  # pending first, each address once
            if failed >= MAX_INSERT_FAILURES_PER_POLL:
                self._queue(address)
                continue
            try:
                if await self.intake.add(address, source=SOURCE):
                    new += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the address, retry on the next poll
                failed += 1
                self.insert_errors += 1
                first_error = first_error or exc
                self._queue(address)
                continue
            self._pending.pop(address, None)
        if first_error is not None:
            self.storing.failed(f"could not store {failed} token(s) ({type(first_error).__name__}); "
                                f"{len(self._pending)} kept for retry")
        elif new or addresses:
            self.storing.succeeded()
        return new

    def _queue(self, address: str) -> None:
        self._pending[address] = None
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)
