"""DexScreener client: batch pool lookups with a per-token fallback, paced by a limiter.

    client = DexScreenerClient(base_url, session, limiter, stats, timeout_s=10.0, clock=clock)
    result = await client.fetch_batch(mints[:30])     # BatchResult
    result.pairs_by_mint["Mint..."]                   # list[Pair] (empty: no pools)
    result.skipped                                    # Counter of malformed-pair reasons
    result.errors                                     # mint -> error for mints that could not be fetched

- ``GET {base}/tokens/v1/solana/{m1,m2,...}`` (<= 30 mints) returns a bare array of pairs.
  Mints absent from it are looked up with ``GET {base}/token-pairs/v1/solana/{mint}``
  (at most ``max_fallbacks`` per batch, to keep the API budget for checks); pools only the
  fallback returned are reported in ``result.discrepancies``.
- A 429 pauses the shared limiter for its ``Retry-After`` (seconds or an HTTP date, read by
  ``app.retry_after``) and retries; 5xx, connection errors and unparseable bodies are retried
  with jittered exponential backoff (``app.backoff.Backoff``) up to ``max_retries`` times,
  then raise ``FetchError``. Nothing here crashes on junk.
- A timeout is retried at most ``max_timeout_retries`` times (default 0): a hanging server
  costs one timeout per request, not one per attempt. The token is rescheduled anyway.
- 429s are logged on change of state: one WARNING when an endpoint starts answering 429,
  one INFO when it answers again (with the count); every 429 is counted in ``ApiStats``.
- Timeouts are per endpoint and adjustable at run time (``TimeoutControl``). A ``LatencyObserver``
  (recovery's RFC 6298 timer, wired by the service) hears each first attempt's latency (Karn: never
  a retried call's) and each timeout.
- With a ``BreakerBoard`` (``tokens.breaker``), every attempt asks the endpoint's circuit breaker
  first: while it is open nothing is sent and ``FetchError("circuit_open")`` is raised at once
  (no retries), so an outage costs probes, not the full request rate. 429s are not failures there.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from app.backoff import Backoff
from app.clock import SYSTEM_CLOCK, Clock
from app.retry_after import parse_retry_after
from tokens.api_stats import ApiStats
from tokens.breaker import DROPPED, FAILURE, SUCCESS, THROTTLED, BreakerBoard, Outcome, Permit
from tokens.failure_streak import FailureStreak
from tokens.pairs import Pair, parse_pairs
from tokens.pool_cache import CachedPools, PoolCache
from tokens.ratelimit import Limiter, RateLimiter, Sleep

log = logging.getLogger(__name__)

TOKENS_BATCH = "tokens_batch"
TOKEN_PAIRS = "token_pairs"
TOKEN_PROFILES = "token_profiles"
MAX_BATCH = 30
MAX_RETRY_AFTER_S = 120.0  # a longer Retry-After (seconds or HTTP date) is clamped to this
DEFAULT_RETRY_AFTER_S = 1.0  # a 429 without a usable Retry-After


CIRCUIT_OPEN = "circuit_open"  # FetchError.kind of a call the breaker did not let through (nothing was sent)


class LatencyObserver(Protocol):
    """Hears request latencies to adapt timeouts (``recovery.rto.RtoController`` implements it)."""
    def sample(self, endpoint: str, seconds: float) -> None: ...
    def expired(self, endpoint: str, timeout_s: float) -> None: ...


class FetchError(Exception):
    """A request that failed after its retries; ``kind`` is a short countable reason."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class EndpointTimeouts:
    """Per-endpoint request timeouts (implements ``recovery.controllers.TimeoutControl``).

        timeouts = EndpointTimeouts(10.0)
        timeouts.set_timeout_s("tokens_batch", 4.0)
        timeouts.timeout_s("tokens_batch")   # 4.0
    """

    def __init__(self, default_s: float, overrides: Mapping[str, float] | None = None,
                 min_s: float = 0.05, max_s: float = 120.0) -> None:
        self.default_s = float(default_s)
        self.min_s, self.max_s = min_s, max_s
        self._by_endpoint: dict[str, float] = dict(overrides or {})

    def timeout_s(self, endpoint: str) -> float:
        return self._by_endpoint.get(endpoint, self.default_s)

    def set_timeout_s(self, endpoint: str, seconds: float) -> None:
        self._by_endpoint[endpoint] = min(self.max_s, max(self.min_s, float(seconds)))


@dataclass
class BatchResult:
    pairs_by_mint: dict[str, list[Pair]]
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_by_mint: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    discrepancies: list[tuple[str, str, str]] = field(default_factory=list)  # (mint, kind, pairAddress)
    fetched_at: float = 0.0
    requests: int = 0
    cached_at: dict[str, float] = field(default_factory=dict)  # mints answered from the PoolCache: when fetched
    stale_reason: dict[str, str] = field(default_factory=dict)  # mints served stale because the market failed

    def fetched_at_for(self, mint: str) -> float:
        """When ``mint``'s pools were fetched: the cache's time for a mint served from it."""
        return self.cached_at.get(mint, self.fetched_at)


class DexScreenerClient:
    """DexScreener over HTTP. See the module docstring.

        client = DexScreenerClient("http://127.0.0.1:8000", session, RateLimiter(291), ApiStats(), 10.0)
        pairs, skipped = await client.fetch_token_pairs(mint)
    """

    def __init__(self, base_url: str, session: aiohttp.ClientSession, limiter: Limiter, stats: ApiStats,
                 timeout_s: float | EndpointTimeouts = 10.0, clock: Clock = SYSTEM_CLOCK, *,
                 chain: str = "solana", max_retries: int = 3, retry_base_s: float = 0.25,
                 retry_max_s: float = 5.0, max_429_retries: int = 5, max_fallbacks: int = 3,
                 max_timeout_retries: int = 0, profiles_limiter: Limiter | None = None,
                 sleep: Sleep = asyncio.sleep, breakers: BreakerBoard | None = None,
                 latency_observer: LatencyObserver | None = None, cache: PoolCache | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.limiter = limiter
        self.profiles_limiter = profiles_limiter or limiter
        self.stats = stats
        self.timeouts = timeout_s if isinstance(timeout_s, EndpointTimeouts) else EndpointTimeouts(timeout_s)
        self.clock = clock
        self.chain = chain
        self.cache = cache
        self.max_retries = max_retries
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.max_429_retries = max_429_retries
        self.max_fallbacks = max_fallbacks
        self.max_timeout_retries = max_timeout_retries
        self._sleep = sleep
        self._throttled: dict[str, FailureStreak] = {}
        self.breakers = breakers
        self.latency_observer = latency_observer

    def admits(self, endpoint: str) -> bool:
        """Whether the endpoint's breaker would let a call through now (always, without breakers)."""
        return self.breakers is None or self.breakers.admits(endpoint)

    # --- TimeoutControl ------------------------------------------------------
    def timeout_s(self, endpoint: str) -> float:
        return self.timeouts.timeout_s(endpoint)

    def set_timeout_s(self, endpoint: str, seconds: float) -> None:
        self.timeouts.set_timeout_s(endpoint, seconds)

    # --- HTTP ----------------------------------------------------------------
    @property
    def retry_backoff(self) -> Backoff:
        """Delays between retries of a failed request (``retry_base_s`` doubling up to ``retry_max_s``)."""
        return Backoff(base_s=self.retry_base_s, max_s=self.retry_max_s)

    async def _get_json(self, endpoint: str, path: str, limiter: Limiter | None = None,
                        acquired: bool = False) -> Any:
        """GET ``path`` and decode JSON, with 429/5xx/timeout handling; raises ``FetchError``.

        ``acquired``: the caller already holds a limiter slot for the first attempt.
        """
        limiter = limiter or self.limiter
        url = f"{self.base_url}{path}"
        attempt = 0
        throttled = 0
        timeouts = 0
        streak = self._throttled.get(endpoint)
        if streak is None:
            streak = self._throttled[endpoint] = FailureStreak(log, f"{endpoint} rate limiting (429)",
                                                               unit="answers", clock=self.clock)
        while True:
            permit: Permit | None = None
            if self.breakers is not None:
                permit = self.breakers.allow(endpoint)
                if permit is None:
                    raise FetchError(CIRCUIT_OPEN, f"{endpoint} circuit open (next probe in "
                                                   f"{self.breakers.get(endpoint).retry_in_s():.1f}s)")
            outcome: Outcome = DROPPED
            answered_s: float | None = None
            try:
                if acquired:
                    acquired = False
                else:
                    await limiter.acquire()
                started = time.perf_counter()
                kind: str
                timeout_s = self.timeouts.timeout_s(endpoint)
                try:
                    timeout = aiohttp.ClientTimeout(total=timeout_s)
                    async with self.session.get(url, timeout=timeout) as resp:
                        body = await resp.read()
                        latency = answered_s = time.perf_counter() - started
                        if resp.status == 429:
                            outcome = THROTTLED
                            self.stats.record(endpoint, latency_s=latency, status=429)
                            wait = parse_retry_after(resp.headers.get("Retry-After"), self.clock.time(),
                                                     default=DEFAULT_RETRY_AFTER_S, maximum=MAX_RETRY_AFTER_S)
                            limiter.pause_for(wait)
                            throttled += 1
                            streak.failed(f"429 from {endpoint}: pausing requests for {wait:.1f}s")
                            if throttled > self.max_429_retries:
                                raise FetchError("rate_limited", f"429 from {endpoint} {throttled} times")
                            continue
                        streak.succeeded()
                        if resp.status >= 500:
                            outcome = FAILURE
                            self.stats.record(endpoint, latency_s=latency, status=resp.status)
                            kind = f"http_{resp.status}"
                        elif resp.status >= 400:
                            outcome = SUCCESS  # the server works; the request was wrong
                            self.stats.record(endpoint, latency_s=latency, status=resp.status)
                            raise FetchError(f"http_{resp.status}", f"{endpoint} answered {resp.status}")
                        else:
                            try:
                                data = json.loads(body) if body.strip() else None
                            except (ValueError, RecursionError):  # RecursionError: nested too deep
                                data = _BAD
                            if data is _BAD or data is None:
                                outcome = FAILURE
                                self.stats.record(endpoint, latency_s=latency, status=resp.status,
                                                  error="malformed_json" if data is _BAD else "empty_body")
                                kind = "malformed_json" if data is _BAD else "empty_body"
                            else:
                                outcome = SUCCESS
                                self.stats.record(endpoint, latency_s=latency, status=resp.status)
                                if attempt == 0 and throttled == 0 and self.latency_observer is not None:
                                    self.latency_observer.sample(endpoint, latency)  # Karn: first tries only
                                return data
                except asyncio.TimeoutError:
                    outcome = FAILURE
                    self.stats.record(endpoint, timeout=True)
                    if self.latency_observer is not None:
                        self.latency_observer.expired(endpoint, timeout_s)
                    kind = "timeout"
                    timeouts += 1
                    if timeouts > self.max_timeout_retries:  # a hanging server: waiting again costs a full timeout
                        raise FetchError(kind, f"{endpoint} timed out after {timeout_s:g}s ({attempt + 1} attempts)")
                except aiohttp.ClientError as exc:
                    outcome = FAILURE
                    self.stats.record(endpoint, error=type(exc).__name__)
                    kind = "connection"
            finally:
                if permit is not None and self.breakers is not None:
                    self.breakers.record(permit, outcome, answered_s)
            if attempt >= self.max_retries:
                raise FetchError(kind, f"{endpoint} failed after {attempt + 1} attempts")
            await self._sleep(self.retry_backoff.delay(attempt))
            attempt += 1

    # --- endpoints -------------------------------------------------------------
    async def fetch_token_pairs(self, mint: str) -> tuple[list[Pair], Counter[str]]:
        """All pools of one token via ``/token-pairs/v1``; malformed pools skipped and counted."""
        data = await self._get_json(TOKEN_PAIRS, f"/token-pairs/v1/{self.chain}/{mint}")
        pairs, skipped = parse_pairs(_pair_list(data), chain=self.chain)
        return [p for p in pairs if p.base_address == mint], skipped

    async def fetch_batch(self, mints: Sequence[str], *, acquired: bool = False) -> BatchResult:
        """Pools of up to 30 mints; raises ``FetchError`` only when the batch request itself fails.

        ``acquired``: the caller already took a limiter slot for the batch request.
        """
        if len(mints) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} mints per batch")
        wanted = list(dict.fromkeys(mints))
        result = BatchResult(pairs_by_mint={m: [] for m in wanted})
        result.fetched_at = now = self.clock.time()
        cache = self.cache
        if cache is not None:  # inside the lifetime (stale-while-revalidate): no request for these
            for mint in wanted:
                if (entry := cache.fresh(mint, now)) is not None:
                    self._serve(result, mint, entry)
                    cache.served_fresh += 1
            wanted = [m for m in wanted if m not in result.cached_at]
        if not wanted:
            return result
        try:
            data = await self._get_json(TOKENS_BATCH, f"/tokens/v1/{self.chain}/{','.join(wanted)}",
                                       acquired=acquired)
        except FetchError as exc:
            if not self._serve_stale(result, wanted, exc, now):
                raise
            return result
        result.requests += 1
        result.fetched_at = self.clock.time()
        raw = _pair_list(data)
        for item in raw:
            # Attribute malformed pairs to a mint when we can still see which one.
            pairs, skipped = parse_pairs([item], chain=self.chain)
            if skipped:
                result.skipped.update(skipped)
                base = item.get("baseToken") if isinstance(item, Mapping) else None
                addr = base.get("address") if isinstance(base, Mapping) else None
                if isinstance(addr, str) and addr in result.pairs_by_mint:
                    result.skipped_by_mint[addr] = result.skipped_by_mint.get(addr, 0) + 1
                continue
            pair = pairs[0]
            if pair.base_address in result.pairs_by_mint:
                result.pairs_by_mint[pair.base_address].append(pair)
        missing = [m for m in wanted if not result.pairs_by_mint[m] and m not in result.skipped_by_mint]
        if missing and self.max_fallbacks > 0:
            await self._fallback(missing[: self.max_fallbacks], result)
        if cache is not None:
            for mint in wanted:
                if mint not in result.errors and mint not in result.cached_at:
                    cache.put(mint, result.pairs_by_mint[mint], result.fetched_at)
        return result

    @staticmethod
    def _serve(result: BatchResult, mint: str, entry: CachedPools) -> None:
        result.pairs_by_mint[mint] = list(entry.pairs)
        result.cached_at[mint] = entry.fetched_at

    def _serve_stale(self, result: BatchResult, mints: Sequence[str], exc: FetchError, now: float) -> bool:
        """Stale-if-error: answer ``mints`` from the cache where it holds data younger than
        ``STALE_DATA_S``; the others carry the error. False (the caller raises) when the breaker
        refused (nothing was asked) or the cache has nothing for any of them."""
        if self.cache is None or exc.kind == CIRCUIT_OPEN:
            return False
        entries = {m: e for m in mints if (e := self.cache.stale_if_error(m, now)) is not None}
        if not entries:
            return False
        for mint in mints:
            entry = entries.get(mint)
            if entry is None:
                result.errors[mint] = str(exc)
                continue
            self._serve(result, mint, entry)
            result.stale_reason[mint] = str(exc)
            self.cache.served_stale += 1
        return True

    async def _fallback(self, mints: list[str], result: BatchResult) -> None:
        outcomes = await asyncio.gather(*(self.fetch_token_pairs(m) for m in mints), return_exceptions=True)
        for mint, outcome in zip(mints, outcomes):
            result.requests += 1
            if isinstance(outcome, FetchError):
                if outcome.kind != CIRCUIT_OPEN and not self._serve_stale(result, [mint], outcome, result.fetched_at):
                    result.errors[mint] = str(outcome)  # (refused, nothing sent: as if beyond max_fallbacks)
                continue
            if isinstance(outcome, BaseException):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                result.errors[mint] = f"{type(outcome).__name__}: {outcome}"
                continue
            pairs, skipped = outcome
            result.skipped.update(skipped)
            if skipped:
                result.skipped_by_mint[mint] = result.skipped_by_mint.get(mint, 0) + sum(skipped.values())
            result.pairs_by_mint[mint] = pairs
            for pair in pairs:
                result.discrepancies.append((mint, "missing_pool", pair.pair_address))

    async def fetch_profiles(self) -> list[str]:
        """Solana token addresses from ``/token-profiles/latest/v1`` (under the profiles limiter)."""
        data = await self._get_json(TOKEN_PROFILES, "/token-profiles/latest/v1", self.profiles_limiter)
        items = data if isinstance(data, list) else []
        out: list[str] = []
        for item in items:
            if isinstance(item, Mapping) and item.get("chainId") == self.chain:
                addr = item.get("tokenAddress")
                if isinstance(addr, str):
                    out.append(addr)
        return out


_BAD = object()


def _pair_list(data: Any) -> list[Any]:
    """The pair array of either response shape: a bare array or ``{"pairs": [...] | null}``."""
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and isinstance(data.get("pairs"), list):
        return data["pairs"]
    return []
