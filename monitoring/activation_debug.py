"""Why is (or isn't) this token active? Re-run its activation check on fresh pool data.

``debug_token`` fetches the token's pools now — the batch endpoint for this one mint
first, then the per-token endpoint when the batch has none or fails — evaluates every
activation condition with ``tokens.activation.evaluate`` and returns each condition's
observed value, threshold and verdict, plus the token's last checks and transitions::

    debug = await debug_token(db, client, ActivationRules.from_settings(settings), mint, clock.time())
    debug.tracked              # False: the mint is not (or no longer) in the database
    debug.fetch_steps          # [FetchStep("batch", pools=0), FetchStep("token_pairs", pools=2)]
    debug.result.conditions    # [ConditionResult(name="external_liquidity", observed=180.0, threshold=200.0, ...)]
    debug.result.passed

A malformed mint raises ``InvalidMint`` (its message is safe to show); an untracked
mint returns ``tracked=False`` without spending API requests. Fetch failures are
reported in the steps, never raised. When no pool data could be fetched at all
(``debug.fetch_failed``) nothing is evaluated (``result`` is ``None``): judging the
conditions against empty data would report "fresh" data and "no pairs" that were never seen.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.db import Database
from tokens.activation import ActivationResult, ActivationRules, evaluate
from tokens.intake import BASE58_ALPHABET, MAX_MINT_CHARS, MIN_MINT_CHARS
from tokens.queries import CheckView, TokenView, TransitionView, get_token, last_checks, last_transitions

BATCH = "batch"
TOKEN_PAIRS = "token_pairs"


class InvalidMint(ValueError):
    """A string that cannot be a Solana mint; the message says why, without echoing junk."""


def validate_mint(raw: object) -> str:
    """The mint, stripped, if it is 32-44 base58 characters; else ``InvalidMint``.

    The message counts the first word, the mint itself; text after a valid mint is refused too.

        validate_mint("  So11111111111111111111111111111111111111112 ")  # stripped mint
        validate_mint("0xabc")   # InvalidMint: not base58 ...
        validate_mint("So11111111111111111111111111111111111111112 extra")  # InvalidMint: only the mint ...
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidMint("give a mint address: 32-44 base58 characters")
    words = raw.split()
    mint = _validate_word(words[0], "the first word" if len(words) > 1 else "this")
    if len(words) > 1:
        extra = "the word" if len(words) == 2 else f"the {len(words) - 1} words"
        raise InvalidMint(f"give only the mint address: remove {extra} after it")
    return mint


def _validate_word(mint: str, subject: str) -> str:
    if not MIN_MINT_CHARS <= len(mint) <= MAX_MINT_CHARS:
        raise InvalidMint(f"a mint address has 32-44 characters, {subject} has {len(mint)}")
    bad = sorted({ch for ch in mint if ch not in BASE58_ALPHABET})
    if bad:
        shown = "".join(ch for ch in bad if ch.isascii() and ch.isalnum())[:8]
        hint = f" (found {', '.join(shown)})" if shown else ""
        raise InvalidMint(f"a mint address is base58: no 0, O, I, l, spaces or symbols{hint}")
    return mint


@dataclass(frozen=True)
class FetchStep:
    """One request made for the debug: which endpoint, how many usable pools, or the error."""

    endpoint: str
    pools: int = 0
    skipped: int = 0
    error: str | None = None
    cached_at: float | None = None   # answered from the pool cache (stale data): when it was fetched
    stale_reason: str | None = None  # why the cache answered: the market's failure (None: its lifetime)


@dataclass
class TokenDebug:
    mint: str
    tracked: bool
    token: TokenView | None = None
    fetch_steps: list[FetchStep] = field(default_factory=list)
    source: str | None = None  # endpoint whose pools were evaluated
    fetched_at: float | None = None
    result: ActivationResult | None = None
    checks: list[CheckView] = field(default_factory=list)
    transitions: list[TransitionView] = field(default_factory=list)

    @property
    def fetch_failed(self) -> bool:
        """No pool data was obtained: the last request failed and no earlier one found pools
        (an empty batch answer is not evidence either: the per-token request is the fallback)."""
        return (bool(self.fetch_steps) and self.fetch_steps[-1].error is not None
                and not any(step.pools for step in self.fetch_steps))

    @property
    def fetch_error(self) -> str | None:
        """The last request's error when the fetch failed, else ``None``."""
        return self.fetch_steps[-1].error if self.fetch_failed else None


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def _fetch(client: Any, mint: str, now: float) -> tuple[list[Any], int, list[FetchStep], str | None, float]:
    steps: list[FetchStep] = []
    pairs: list[Any] = []
    skipped = 0
    source: str | None = None
    fetched_at = now
    try:
        batch = await client.fetch_batch([mint])
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - shown to the user as a step
        steps.append(FetchStep(BATCH, error=_short(exc)))
        batch = None
    if batch is not None:
        fetched_at = float(getattr(batch, "fetched_at", 0.0) or now)
        found = list(batch.pairs_by_mint.get(mint, []))
        cached_at = getattr(batch, "cached_at", {}).get(mint)
        if cached_at is not None:  # the market was not asked (or failed): the cache's pools, with their age
            steps.append(FetchStep(BATCH, len(found), 0, cached_at=float(cached_at),
                                   stale_reason=getattr(batch, "stale_reason", {}).get(mint)))
            return found, 0, steps, BATCH, float(cached_at)
        fell_back = getattr(batch, "requests", 1) > 1
        batch_skipped = int(getattr(batch, "skipped_by_mint", {}).get(mint, 0))
        if fell_back:
            # The client already asked /token-pairs for a mint the batch missed.
            steps.append(FetchStep(BATCH, 0, 0))
            error = getattr(batch, "errors", {}).get(mint)
            steps.append(FetchStep(TOKEN_PAIRS, len(found), batch_skipped, error))
            pairs, skipped, source = found, batch_skipped, (None if error else TOKEN_PAIRS)
            return pairs, skipped, steps, source, fetched_at
        steps.append(FetchStep(BATCH, len(found), batch_skipped))
        if found:
            return found, batch_skipped, steps, BATCH, fetched_at
        pairs, skipped, source = found, batch_skipped, BATCH
    try:
        outcome = await client.fetch_token_pairs(mint)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        steps.append(FetchStep(TOKEN_PAIRS, error=_short(exc)))
        return pairs, skipped, steps, source, fetched_at
    single, single_skipped = outcome if isinstance(outcome, tuple) else (outcome, {})
    n_skipped = int(sum(single_skipped.values())) if hasattr(single_skipped, "values") else 0
    steps.append(FetchStep(TOKEN_PAIRS, len(single), n_skipped))
    return list(single), n_skipped, steps, TOKEN_PAIRS, now


async def debug_token(db: Database, client: Any, rules: ActivationRules, mint: str, now: float, *,
                      history: int = 5) -> TokenDebug:
    """Re-run the activation check of ``mint`` step by step (see the module docstring)."""
    mint = validate_mint(mint)

    async def _token(session):
        return await get_token(session, mint)

    token = await db.run(_token)
    if token is None:
        return TokenDebug(mint, tracked=False)
    pairs, skipped, steps, source, fetched_at = await _fetch(client, mint, now)
    debug = TokenDebug(mint, True, token, steps, source, fetched_at)
    if not debug.fetch_failed:
        debug.result = evaluate(pairs, rules, now=now, fetched_at=fetched_at, malformed=skipped, mint=mint)
    else:
        debug.source = debug.fetched_at = None

    async def _history(session):
        return await last_checks(session, mint, history), await last_transitions(session, mint, history)

    debug.checks, debug.transitions = await db.run(_history)
    return debug


async def mint_for_id(db: Database, token_id: int) -> str | None:
    """The mint of token ``token_id`` (for buttons that carry the id), or ``None``."""
    from sqlalchemy import text

    from monitoring.pipeline.sql import run

    async def _q(session):
        return (await run(session, text("SELECT mint FROM tokens WHERE id = :id"), {"id": int(token_id)})).scalar()

    return await db.run(_q)

