"""Admitting discovered mints: validate, insert idempotently, count duplicates and garbage.

Both discovery sources (the PumpPortal websocket and DexScreener profiles) go through one
``TokenIntake`` so a mint seen by both, or seen again after a restart, is stored once::

    intake = TokenIntake(db, clock, counters, stages)
    await intake.add("So1ana...Mint", name="Cat", symbol="CAT", source="pumpportal")  # True: new
    await intake.add("So1ana...Mint")                                                  # False: duplicate
"""
from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict

from app.clock import SYSTEM_CLOCK, Clock
from app.db import Database
from tokens.counters import PipelineCounters
from tokens.text import clean_text
from tokens.repository import insert_token
from tokens.stage_stats import StageStats

log = logging.getLogger(__name__)

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
MIN_MINT_CHARS, MAX_MINT_CHARS = 32, 44
# used with fullmatch: no "\n" slips past "$"
_BASE58 = re.compile(f"[{BASE58_ALPHABET}]{{{MIN_MINT_CHARS},{MAX_MINT_CHARS}}}")
RECENT_MINTS = 10_000


def is_valid_mint(value: object) -> bool:
    """A Solana mint: a base58 string of 32 to 44 characters, nothing before or after."""
    return isinstance(value, str) and _BASE58.fullmatch(value) is not None


class TokenIntake:
    """Validates and inserts discovered mints; remembers recent ones to spare the database."""

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK, counters: PipelineCounters | None = None,
                 stages: StageStats | None = None) -> None:
        self.db = db
        self.clock = clock
        self.counters = counters or PipelineCounters()
        self.stages = stages or StageStats(clock)
        self._recent: OrderedDict[str, None] = OrderedDict()

    def _remember(self, mint: str) -> None:
        self._recent[mint] = None
        self._recent.move_to_end(mint)
        while len(self._recent) > RECENT_MINTS:
            self._recent.popitem(last=False)

    async def add(self, mint: object, *, name: object = None, symbol: object = None,
                  source: str = "pumpportal") -> bool:
        """Insert ``mint`` if new. Invalid mints count as garbage; known ones as duplicates.

        ``name`` and ``symbol`` are untrusted market text, cleaned here (``tokens.text.clean_text``)."""
        if not is_valid_mint(mint):
            self.counters.garbage += 1
            return False
        assert isinstance(mint, str)
        self.counters.last_seen_at[source] = self.clock.time()  # the market is talking (new or known)
        if mint in self._recent:
            self.counters.duplicates += 1
            return False
        started = time.perf_counter()
        now = self.clock.time()
        token_id = await self.db.run(lambda s: insert_token(
            s, mint, now=now, name=clean_text(name), symbol=clean_text(symbol, 64), source=source))
        self.stages.record("discovery", time.perf_counter() - started)
        self._remember(mint)
        if token_id is None:
            self.counters.duplicates += 1
            return False
        self.counters.discovered += 1
        self.counters.discovered_by_source[source] += 1
        log.info("discovered %s via %s", mint, source, extra={"mint": mint})
        return True
