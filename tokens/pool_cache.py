"""Pool data of recently checked tokens, served stale in the manner of RFC 5861.

The DexScreener client keeps the pools of every mint it fetched, with the time they were fetched,
and serves them in two cases, always with their real age (so whatever shows or uses them marks
them stale and ``tokens.activation`` judges them by ``data_fresh``):

- **stale-while-revalidate**: a mint whose data is younger than ``fresh_s`` is answered from the
  cache without a request. ``fresh_s`` is 0 (every check asks the market) until the market is slow:
  recovery raises it while the API's p95 latency is over 2 s (the ``pool_cache_s`` knob), so a
  token due again inside that lifetime is judged on the data of its last check, and the check after
  the lifetime revalidates it.
- **stale-if-error**: when the request for a mint fails (a 5xx, a timeout, malformed JSON), data
  younger than ``stale_if_error_s`` (``STALE_DATA_S``, the limit past which activation never
  decides) is served instead of a failed check. Older data is never served: the check fails as
  it would without a cache. A circuit breaker's refusal is not served from the cache: nothing was
  asked, and the tokens keep their due place.

    cache = PoolCache(stale_if_error_s=600.0, max_entries=20_000)
    cache.put("Mint...", pairs, fetched_at=now)
    entry = cache.fresh("Mint...", now)            # None unless younger than fresh_s
    entry = cache.stale_if_error("Mint...", now)   # None unless younger than stale_if_error_s
    entry.age_s(now), entry.pairs

Bounded (least recently stored go first) and registered with the memory reclaimers (``clear``).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from tokens.pairs import Pair

POOL_CACHE_MAX = 20_000  # mints kept (about the tracked tokens; each entry holds its few pairs)


@dataclass(frozen=True)
class CachedPools:
    pairs: tuple[Pair, ...]
    fetched_at: float

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)


class PoolCache:
    """See the module docstring."""

    def __init__(self, *, stale_if_error_s: float, fresh_s: float = 0.0, max_entries: int = POOL_CACHE_MAX) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.stale_if_error_s = float(stale_if_error_s)
        self._fresh_s = max(0.0, float(fresh_s))
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedPools] = OrderedDict()
        self.served_fresh = 0      # mints answered inside the lifetime (no request)
        self.served_stale = 0      # mints answered with stale data because the market failed

    # --- the lifetime (recovery's CacheLifetime knob) --------------------------------
    def fresh_s(self) -> float:
        return self._fresh_s

    def set_fresh_s(self, seconds: float) -> None:
        self._fresh_s = max(0.0, min(float(seconds), self.stale_if_error_s))

    # --- entries ------------------------------------------------------------------------
    def put(self, mint: str, pairs: Sequence[Pair], fetched_at: float) -> None:
        self._entries[mint] = CachedPools(tuple(pairs), fetched_at)
        self._entries.move_to_end(mint)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, mint: str) -> CachedPools | None:
        return self._entries.get(mint)

    def fresh(self, mint: str, now: float) -> CachedPools | None:
        """The mint's data if younger than the lifetime (``fresh_s``); None otherwise."""
        entry = self._entries.get(mint)
        if entry is None or self._fresh_s <= 0 or entry.age_s(now) >= self._fresh_s:
            return None
        return entry

    def stale_if_error(self, mint: str, now: float) -> CachedPools | None:
        """The mint's data if younger than ``stale_if_error_s``; None otherwise (never older)."""
        entry = self._entries.get(mint)
        if entry is None or entry.age_s(now) > self.stale_if_error_s:
            return None
        return entry

    # --- CacheControl / memory reclaimers -------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> int:
        n = len(self._entries)
        self._entries.clear()
        return n

    def stats(self) -> dict[str, float]:
        return {"entries": float(len(self._entries)), "fresh_s": self._fresh_s,
                "served_fresh": float(self.served_fresh), "served_stale": float(self.served_stale)}
