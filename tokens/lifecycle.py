"""Status transitions of a token and when it is next checked. Pure functions.

    monitoring --activated------------------> active
    active     --<primary failure code>-----> monitoring   (e.g. "no_external_pool")
    monitoring --monitoring_timeout---------> archived     (in monitoring > MONITORING_TIMEOUT_H)
    active     --low_score_timeout----------> archived     (score_ewma < MIN_SCORE for LOW_SCORE_TIMEOUT_H)

Archived tokens are never checked again (``next_check_at = NULL``). Scheduling after a
check: hot (``HOT_CHECK_INTERVAL_S``) when active or ``score_ewma > HOT_SCORE_THRESHOLD``,
else cold (``COLD_CHECK_INTERVAL_S``); after a failed fetch, exponential backoff from the
hot interval capped at ``4 x`` the cold one.

    policy = LifecyclePolicy.from_settings(settings)
    decision = decide(state, passed=True, primary_failure=None, score_ewma=63.0, now=now, policy=policy)
    decision.status, decision.reason, decision.next_check_at
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.backoff import Backoff
from tokens.models import ACTIVE, ARCHIVED, MONITORING

ACTIVATED = "activated"
DISCOVERED = "discovered"
MONITORING_TIMEOUT = "monitoring_timeout"
LOW_SCORE_TIMEOUT = "low_score_timeout"


@dataclass(frozen=True)
class LifecyclePolicy:
    """Timeouts and scheduling intervals (seconds).

        policy = LifecyclePolicy(monitoring_timeout_s=3600, low_score_timeout_s=3600)
    """

    monitoring_timeout_s: float = 12 * 3600.0
    low_score_timeout_s: float = 12 * 3600.0
    min_score: float = 20.0
    hot_interval_s: float = 10.0
    cold_interval_s: float = 45.0
    hot_score_threshold: float = 50.0
    fresh_hot_s: float = 120.0
    backoff_cap_factor: float = 4.0

    @classmethod
    def from_settings(cls, settings: Any) -> "LifecyclePolicy":
        return cls(
            monitoring_timeout_s=settings.monitoring_timeout_h * 3600.0,
            low_score_timeout_s=settings.low_score_timeout_h * 3600.0,
            min_score=settings.min_score,
            hot_interval_s=settings.hot_check_interval_s,
            cold_interval_s=settings.cold_check_interval_s,
            hot_score_threshold=settings.hot_score_threshold,
            fresh_hot_s=settings.fresh_hot_s,
        )


@dataclass(frozen=True)
class TokenState:
    """What the lifecycle needs to know about a token before a check."""

    status: str
    status_since: float
    low_score_since: float | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True)
class Decision:
    status: str
    reason: str | None  # None: no transition
    status_since: float
    low_score_since: float | None
    next_check_at: float | None

    @property
    def changed(self) -> bool:
        return self.reason is not None


def next_check_at(status: str, score_ewma: float | None, now: float, policy: LifecyclePolicy,
                  status_since: float | None = None) -> float | None:
    """Hot/cold scheduling after a successful check; ``None`` once archived.

    Hot: active, or a smoothed score over the threshold, or in ``monitoring`` for less than
    ``fresh_hot_s`` (a new migration, or just demoted: when external pools tend to appear).
    """
    if status == ARCHIVED:
        return None
    fresh = status == MONITORING and status_since is not None and now - status_since < policy.fresh_hot_s
    hot = status == ACTIVE or fresh or (score_ewma is not None and score_ewma > policy.hot_score_threshold)
    return now + (policy.hot_interval_s if hot else policy.cold_interval_s)


def backoff_s(failures: int, policy: LifecyclePolicy, jitter: bool = True) -> float:
    """Delay before retrying a token whose fetch failed ``failures`` times in a row: the hot
    interval doubling per failure, capped at ``backoff_cap_factor`` x the cold one, times 0.75-1.25."""
    rule = Backoff(base_s=policy.hot_interval_s, max_s=policy.cold_interval_s * policy.backoff_cap_factor,
                   jitter_low=0.75, jitter_high=1.25)
    return rule.delay(failures - 1, jitter=jitter)


def timeout_reason(state: TokenState, now: float, policy: LifecyclePolicy) -> str | None:
    """The archiving reason if a time-based rule has expired for this token, else ``None``."""
    if state.status == MONITORING and now - state.status_since >= policy.monitoring_timeout_s:
        return MONITORING_TIMEOUT
    if (state.status == ACTIVE and state.low_score_since is not None
            and now - state.low_score_since >= policy.low_score_timeout_s):
        return LOW_SCORE_TIMEOUT
    return None


def _archive(reason: str, now: float) -> Decision:
    return Decision(ARCHIVED, reason, now, None, None)


def decide(state: TokenState, *, ok: bool, passed: bool, primary_failure: str | None,
           score_ewma: float | None, now: float, policy: LifecyclePolicy) -> Decision:
    """The status after a check. ``ok=False``: the fetch failed (no evidence either way)."""
    if state.status == ARCHIVED:
        return Decision(ARCHIVED, None, state.status_since, None, None)
    if not ok:
        reason = timeout_reason(state, now, policy)
        if reason is not None:
            return _archive(reason, now)
        delay = backoff_s(state.consecutive_failures + 1, policy)
        return Decision(state.status, None, state.status_since, state.low_score_since, now + delay)

    low = score_ewma is not None and score_ewma < policy.min_score
    if state.status == MONITORING:
        if passed:
            return Decision(ACTIVE, ACTIVATED, now, now if low else None, next_check_at(ACTIVE, score_ewma, now, policy))
        if now - state.status_since >= policy.monitoring_timeout_s:
            return _archive(MONITORING_TIMEOUT, now)
        return Decision(MONITORING, None, state.status_since, None,
                        next_check_at(MONITORING, score_ewma, now, policy, state.status_since))

    # active
    if not passed:
        return Decision(MONITORING, primary_failure or "conditions_failed", now, None,
                        next_check_at(MONITORING, score_ewma, now, policy, now))
    low_since = (state.low_score_since if state.low_score_since is not None else now) if low else None
    if low_since is not None and now - low_since >= policy.low_score_timeout_s:
        return _archive(LOW_SCORE_TIMEOUT, now)
    return Decision(ACTIVE, None, state.status_since, low_since, next_check_at(ACTIVE, score_ewma, now, policy))
