"""A small hand-built dataset for the pipeline monitoring tests.

Every figure the tests expect is worked out by hand in ``test_pipeline_queries.py``.
N is the test clock's now.
"""
from __future__ import annotations

from tests.tokens.pairfactory import MINT, pair
from tokens.activation import ActivationRules, evaluate
from tokens.models import Check, Token, Transition
from tokens.check_rollup import rebuild_check_rollup

N = 1_700_000_000.0

# mint -> (status, status_since offset, next_check_at offset or None, score_ewma, extra fields)
_TOKENS: dict[str, dict] = {
    # due tokens (lag): monitoring 5/20/50 s late, active 15/2 s late
    "T1": dict(status="monitoring", status_since=N - 50, next_check_at=N - 5, score_ewma=60.0),
    "T2": dict(status="monitoring", status_since=N - 100, next_check_at=N - 20, score_ewma=10.0),
    "T3": dict(status="monitoring", status_since=N - 100, next_check_at=N - 50, score_ewma=None),
    "T4": dict(status="active", status_since=N - 1000, next_check_at=N - 15, score_ewma=30.0),
    "T5": dict(status="active", status_since=N - 1000, next_check_at=N - 2, score_ewma=70.0),
    "T6": dict(status="monitoring", status_since=N - 20, next_check_at=N + 30, score_ewma=20.0),
    "T7": dict(status="archived", status_since=N - 500, next_check_at=None),
    # stuck candidates (next check in the future so they do not touch the lag figures)
    "S1": dict(status="monitoring", status_since=N - 1000, next_check_at=N + 10),
    "S2": dict(status="monitoring", status_since=N - 900, next_check_at=N + 10, last_check_at=N - 30,
               last_success_at=N - 400, consecutive_failures=1, check_count=5),
    "S3": dict(status="monitoring", status_since=N - 100, next_check_at=N + 10, last_check_at=N - 5000,
               consecutive_failures=4, check_count=4, last_failure_codes="fetch_failed"),
    "S4": dict(status="monitoring", status_since=N - 800, next_check_at=N + 10, last_check_at=N - 4900,
               consecutive_failures=3, check_count=3, last_failure_codes="insufficient_liquidity"),
    "S5": dict(status="monitoring", status_since=N - 1000, next_check_at=N + 10, last_check_at=N - 60,
               last_success_at=N - 60, check_count=9),
    "S6": dict(status="active", status_since=N - 1000, next_check_at=N + 10),
    "S7": dict(status="monitoring", status_since=N - 100, next_check_at=N + 10, consecutive_failures=2,
               last_check_at=N - 10, check_count=2),
    # active, but its pool data has failed to load 6 times in a row: stuck by the failure streak
    "S8": dict(status="active", status_since=N - 850, next_check_at=N + 10, last_check_at=N - 600,
               last_success_at=N - 700, consecutive_failures=6, check_count=12),
}


def liquidity_check(external: float, threshold: float = 200.0) -> dict:
    """The verdict columns (passed, primary_failure, failure_codes, conditions) the processor stores for
    a token with a pump pool and one external SOL pool of ``external`` USD liquidity (plus a rich pool
    quoted in a token that does not count), all taken from the real ``tokens.activation.evaluate``."""
    rules = ActivationRules(min_liquidity_usd=threshold)
    pools = [pair("pumpswap", "SOL", 5000.0), pair("raydium", "SOL", external), pair("orca", "BONK", 9000.0)]
    result = evaluate(pools, rules, now=N, fetched_at=N - 1, mint=MINT)
    codes = ",".join(result.failure_codes) or None
    return dict(passed=result.passed, primary_failure=result.primary_failure, failure_codes=codes,
                conditions=result.conditions_json())


async def build(session) -> dict[str, int]:
    """Insert the dataset; returns mint -> token id."""
    ids: dict[str, int] = {}
    for mint, fields in _TOKENS.items():
        token = Token(mint=mint * 11, discovered_at=fields["status_since"], **fields)
        session.add(token)
        await session.flush()
        ids[mint] = token.id
    t = lambda mint: ids[mint]  # noqa: E731
    transitions = (
        # 6 discoveries inside the 300 s rate window
        [Transition(token_id=t("T1"), from_status=None, to_status="monitoring", at=N - 10 * i, reason="discovered")
         for i in range(1, 7)]
        + [
            Transition(token_id=t("T4"), from_status="monitoring", to_status="active", at=N - 100, reason="ok",
                       time_in_previous_s=60.0),
            Transition(token_id=t("T5"), from_status="monitoring", to_status="active", at=N - 200, reason="ok",
                       time_in_previous_s=120.0),
            Transition(token_id=t("S6"), from_status="monitoring", to_status="active", at=N - 250, reason="ok",
                       time_in_previous_s=600.0),
            Transition(token_id=t("T7"), from_status="monitoring", to_status="archived", at=N - 50,
                       reason="timeout", time_in_previous_s=43200.0),
            Transition(token_id=t("T7"), from_status="monitoring", to_status="archived", at=N - 3000,
                       reason="low_score", time_in_previous_s=500.0),
            # outside the 1 h activation window
            Transition(token_id=t("T7"), from_status="monitoring", to_status="active", at=N - 4000, reason="ok",
                       time_in_previous_s=9999.0),
            Transition(token_id=t("T7"), from_status="active", to_status="archived", at=N - 10, reason="rugged",
                       time_in_previous_s=100.0),
        ]
    )
    session.add_all(transitions)
    checks: list[Check] = []
    n = 0

    def check(token: str, at: float, status: str = "monitoring", **kw) -> None:
        nonlocal n
        n += 1
        checks.append(Check(check_id=f"c{n}", token_id=t(token), at=at, status_at_check=status, **kw))

    # inside 300 s: 10 monitoring checks: 2 passed, 6 failed on liquidity (170..190), 2 fetch errors
    for i, liq in enumerate([250.0, 260.0]):
        check("T1", N - 10 - i, **liquidity_check(liq))
    for i, liq in enumerate([170.0, 175.0, 180.0, 180.0, 185.0, 190.0]):
        check("T2", N - 20 - i, **liquidity_check(liq))
    check("T3", N - 40, ok=False, passed=False, error="timeout")
    check("T3", N - 41, ok=False, passed=False, error="HTTP 503")
    # inside 300 s: 5 checks on active tokens
    for i in range(5):
        check("T4", N - 50 - i, status="active", passed=True)
    # 1000 s ago (inside 1 h, outside 300 s): 4 monitoring checks failing two conditions
    for i in range(4):
        check("T6", N - 1000 - i, passed=False, primary_failure="no_pump_pool",
              failure_codes="no_pump_pool,insufficient_liquidity", conditions="{not json")
    # 5000 s ago (inside 24 h only): the stuck tokens' last checks
    check("S3", N - 5000, ok=False, passed=False, error="HTTP 503 from dexscreener")
    check("S4", N - 5000, ok=False, passed=False, error="old error")
    # 600 s ago (outside 300 s): S8's last check, on an active token (never counted as a monitoring failure)
    check("S8", N - 600, status="active", ok=False, passed=False, error="TimeoutError: read timed out")
    check("S4", N - 4900, **liquidity_check(10.0))
    session.add_all(checks)
    await rebuild_check_rollup(session)  # what apply_checks writes with each batch
    await session.commit()
    return ids
