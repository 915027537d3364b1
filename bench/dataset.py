"""Build a large pipeline dataset: 100,000 tokens, 1,000,000 transitions, 1,000,000 checks.

    .venv/bin/python bench/dataset.py sqlite+aiosqlite:///./data/bench.db             # sparse: 48 h
    .venv/bin/python bench/dataset.py --density production sqlite+aiosqlite:///./data/dense.db
    .venv/bin/python bench/dataset.py postgresql+asyncpg://postgres@127.0.0.1:5432/tw_bench
    # or from code: await build_dataset(url, now=1_700_000_000.0, checks_span_h=DENSITIES["production"])

The database must be migrated and empty (``build_dataset`` migrates it). Rows go in with
multi-row INSERTs in chunks (SQLAlchemy's insertmanyvalues on both drivers), inside one
transaction per chunk. Shape (deterministic for a seed):

- tokens: 85 % archived (no next check), 12 % monitoring, 3 % active; about 0.5 % of the
  live tokens are due now, late by up to 90 s; some monitoring tokens are stuck;
- transitions: one discovery per token, the rest spread over the last 7 days;
- checks: spread over the last 48 hours (``sparse``: about 20,800 per hour, 347 a minute) or
  the last 2 hours (``production``: about 8,300 a minute, the pipeline's own rate at its
  300-requests-a-minute ceiling), 70 % failing on liquidity/pools, 5 % fetch errors, each with
  a realistic conditions JSON. Each chunk of checks adds its per-minute counts
  (``tokens.check_rollup``) in the same transaction, as ``apply_checks`` does.

Transitions and checks are inserted in time order (with seconds of jitter), as a live
service appends them; PostgreSQL is then VACUUM ANALYZEd, as autovacuum would.
"""
from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text  # noqa: E402

from app.db import Database, make_engine  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from simulator.model import MarketModel  # noqa: E402
from tokens.activation import ActivationRules, evaluate  # noqa: E402
from tokens.check_rollup import add_checks_to_rollup  # noqa: E402
from tokens.intake import BASE58_ALPHABET  # noqa: E402
from tokens.models import Check, Token, Transition  # noqa: E402

NOW = 1_700_000_000.0
CHUNK = 5_000
DENSITIES = {"sparse": 48.0, "production": 2.0}  # hours the 1,000,000 checks are spread over


def _mint(rng: random.Random) -> str:
    return "".join(rng.choice(BASE58_ALPHABET) for _ in range(40)) + "pump"


_VERDICTS: dict[int, tuple] = {}


def _verdict(external_liq: float) -> tuple:
    """(passed, failure_codes, primary_failure, conditions JSON) exactly as the processor stores them,
    from the real ``evaluate`` on a pump pool plus one external SOL pool of ``external_liq`` USD
    (cached per whole dollar: a million checks need only a few thousand evaluations)."""
    key = int(external_liq)
    if key not in _VERDICTS:
        model = MarketModel(seed=1)
        pools = [model.make_pair(_VERDICT_MINT, dex_id="pumpswap", quote="SOL", liquidity_usd=5000.0),
                 model.make_pair(_VERDICT_MINT, dex_id="raydium", quote="SOL", liquidity_usd=float(key))]
        result = evaluate(pools, _RULES, now=0.0, fetched_at=0.0, mint=_VERDICT_MINT)
        _VERDICTS[key] = (result.passed, ",".join(result.failure_codes) or None, result.primary_failure,
                          result.conditions_json())
    return _VERDICTS[key]


_RULES = ActivationRules(min_liquidity_usd=200.0)
_VERDICT_MINT = "VerdictMint1111111111111111111111111111pump"


def token_rows(n: int, now: float, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(1, n + 1):
        r = rng.random()
        status = "archived" if r < 0.85 else "monitoring" if r < 0.97 else "active"
        since = now - rng.uniform(0, 7 * 86400) if status == "archived" else now - rng.uniform(0, 12 * 3600)
        due_soon = rng.random() < 0.005
        if status == "archived":
            next_at = None
        elif due_soon:
            next_at = now - rng.uniform(0, 90)
        else:
            next_at = now + rng.uniform(0, 45)
        stuck = status == "monitoring" and rng.random() < 0.05
        rows.append(dict(
            id=i, mint=_mint(rng), name=f"Token {i}", symbol=f"T{i % 1000}", source="pumpportal", status=status,
            status_since=since, discovered_at=since - rng.uniform(0, 600), next_check_at=next_at,
            last_check_at=None if stuck else now - rng.uniform(0, 60),
            last_success_at=None if stuck else now - rng.uniform(0, 120),
            consecutive_failures=rng.choice([3, 4, 0]) if stuck else 0, check_count=rng.randint(0, 500),
            score=rng.uniform(0, 100), score_ewma=rng.uniform(0, 100), low_score_since=None,
            last_failure_codes="insufficient_liquidity" if rng.random() < 0.7 else None,
            activated_at=since if status == "active" else None,
        ))
    return rows


def _ascending(i: int, n: int, span_s: float, now: float, rng: random.Random) -> float:
    """Row ``i`` of ``n``'s time: append order, like a live table (small jitter), within ``span_s``."""
    return min(now, now - span_s + span_s * i / n + rng.uniform(-5.0, 5.0))


def transition_rows(n: int, tokens: int, now: float, rng: random.Random):
    discoveries = set(rng.sample(range(1, n + 1), tokens))
    next_token = iter(range(1, tokens + 1))
    for i in range(1, n + 1):
        at = _ascending(i, n, 7 * 86400, now, rng)
        if i in discoveries:
            yield dict(token_id=next(next_token), from_status=None, to_status="monitoring", at=at,
                       reason="discovered", time_in_previous_s=None)
            continue
        token_id = rng.randint(1, tokens)
        kind = rng.random()
        frm, to, reason = (("monitoring", "active", "activated") if kind < 0.1 else
                           ("monitoring", "archived", "timeout") if kind < 0.6 else
                           ("active", "archived", "rugged") if kind < 0.8 else
                           ("active", "monitoring", "demoted"))
        yield dict(token_id=token_id, from_status=frm, to_status=to, at=at,
                   reason=reason, time_in_previous_s=rng.uniform(5, 43_200))


def check_rows(n: int, tokens: int, now: float, rng: random.Random, span_h: float = 48.0):
    for i in range(1, n + 1):
        r = rng.random()
        ok = r >= 0.05
        passed = ok and r > 0.75
        liq = rng.uniform(50, 199) if not passed else rng.uniform(200, 5000)
        passed, codes, primary, conditions = _verdict(liq) if ok else (False, None, None, None)
        yield dict(
            check_id=f"c{i:08d}", token_id=rng.randint(1, tokens), at=_ascending(i, n, span_h * 3600, now, rng),
            status_at_check="monitoring" if rng.random() < 0.85 else "active", ok=ok, passed=passed,
            failure_codes=codes, primary_failure=primary, conditions=conditions, score=rng.uniform(0, 100),
            pairs_count=rng.randint(0, 4), duration_ms=rng.uniform(20, 900),
            error=None if ok else rng.choice(["timeout", "HTTP 503", "HTTP 429"]),
        )


async def _insert_chunks(db: Database, table, rows, after=None) -> None:
    """Insert ``rows`` in chunks; ``after(session, chunk)`` runs in each chunk's transaction."""
    chunk: list[dict] = []

    async def flush(batch: list[dict]) -> None:
        async with db.session() as session:
            await session.exec(insert(table), params=batch)
            if after is not None:
                await after(session, batch)
            await session.commit()

    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            await flush(chunk)
            chunk = []
    if chunk:
        await flush(chunk)


async def build_dataset(url: str, *, now: float = NOW, tokens: int = 100_000, transitions: int = 1_000_000,
                        checks: int = 1_000_000, seed: int = 1, checks_span_h: float = DENSITIES["sparse"],
                        log=print) -> None:
    """Migrate ``url`` and fill it (see the module docstring)."""
    await upgrade(url)
    db = Database(make_engine(url))
    rng = random.Random(seed)
    try:
        started = time.perf_counter()
        await _insert_chunks(db, Token.__table__, token_rows(tokens, now, rng))
        log(f"  tokens      {tokens:>9,} in {time.perf_counter() - started:6.1f} s")
        t0 = time.perf_counter()
        await _insert_chunks(db, Transition.__table__, transition_rows(transitions, tokens, now, rng))
        log(f"  transitions {transitions:>9,} in {time.perf_counter() - t0:6.1f} s")
        t0 = time.perf_counter()
        await _insert_chunks(db, Check.__table__, check_rows(checks, tokens, now, rng, checks_span_h),
                             after=add_checks_to_rollup)
        log(f"  checks      {checks:>9,} over {checks_span_h:g} h ({checks / checks_span_h / 60:,.0f} a minute)"
            f" in {time.perf_counter() - t0:6.1f} s")
        async with db.engine.begin() as conn:
            if db.dialect == "postgresql":
                await conn.execute(text("SELECT setval(pg_get_serial_sequence('tokens', 'id'), :n)"), {"n": tokens})
            else:
                await conn.execute(text("ANALYZE"))
        if db.dialect == "postgresql":  # what autovacuum does on a live server (visibility map, statistics)
            async with db.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE"))
        log(f"  total {time.perf_counter() - started:.1f} s")
    finally:
        await db.dispose()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="DATABASE_URL (migrated here; must be empty)")
    parser.add_argument("--density", choices=sorted(DENSITIES), default="sparse")
    args = parser.parse_args()
    asyncio.run(build_dataset(args.url, checks_span_h=DENSITIES[args.density]))
