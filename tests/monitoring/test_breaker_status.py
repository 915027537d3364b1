"""Breaker states where the operator looks: /metrics (tokenwatch_circuit_state 0/1/2 per endpoint) and
the /status API lines, from a real breaker board driven through its states on a ManualClock."""
from __future__ import annotations

from prometheus_client import CollectorRegistry as PromRegistry
from prometheus_client import generate_latest

from app.clock import ManualClock
from bot.status_host import host_section
from delivery.html import validate_html
from monitoring.collector import CollectorRegistry
from monitoring.collectors.api import ApiCollector
from monitoring.collectors.breakers import BreakerCollector
from monitoring.http import SampleExposition
from tokens.api_stats import ApiStats
from tokens.breaker import FAILURE, SUCCESS, BreakerBoard, BreakerPolicy

POLICY = BreakerPolicy(min_calls=4, open_base_s=12.0, open_max_s=20.0, half_open_successes=2)


async def _collect(clock: ManualClock, board: BreakerBoard, stats: ApiStats) -> tuple[str, str]:
    registry = CollectorRegistry(clock=clock)
    registry.register(ApiCollector(stats.snapshot))
    registry.register(BreakerCollector(board))
    await registry.run_collection()
    snapshot = registry.coordinator.latest
    prom = PromRegistry(auto_describe=False)
    prom.register(SampleExposition(registry))
    return await host_section(None, snapshot, snapshot.at), generate_latest(prom).decode()  # type: ignore[arg-type]


def _calls(board: BreakerBoard, stats: ApiStats, outcome, n: int) -> None:
    for _ in range(n):
        permit = board.allow("tokens_batch")
        assert permit is not None
        board.record(permit, outcome, 0.1)
        stats.record("tokens_batch", latency_s=0.1, status=200 if outcome == SUCCESS else 503)


async def test_status_and_metrics_follow_the_breaker() -> None:
    clock = ManualClock()
    board = BreakerBoard(POLICY, clock, random=lambda: 1.0)
    stats = ApiStats(clock=clock)
    _calls(board, stats, SUCCESS, 3)
    text, metrics = await _collect(clock, board, stats)
    validate_html(text)
    assert 'tokenwatch_circuit_state{endpoint="tokens_batch"} 0.0' in metrics
    assert "circuit" not in text  # closed: nothing to say

    _calls(board, stats, FAILURE, 3)  # 3 of 6 failed: 50% opens it
    text, metrics = await _collect(clock, board, stats)
    validate_html(text)
    assert 'tokenwatch_circuit_state{endpoint="tokens_batch"} 2.0' in metrics
    assert 'tokenwatch_circuit_state{endpoint="token_pairs"} 0.0' in metrics  # per endpoint
    assert 'tokenwatch_circuit_opened_total{endpoint="tokens_batch"} 1.0' in metrics
    assert "# TYPE tokenwatch_circuit_state gauge" in metrics
    line = next(t for t in text.splitlines() if t.startswith("tokens_batch"))
    assert line.endswith("· 🔴 circuit open, next probe in 12s")

    clock.advance(12.0)
    permit = board.allow("tokens_batch")  # the first probe goes out
    text, metrics = await _collect(clock, board, stats)
    assert 'tokenwatch_circuit_state{endpoint="tokens_batch"} 1.0' in metrics
    assert "🟡 circuit half-open (probing)" in text

    assert permit is not None
    board.record(permit, SUCCESS, 0.1)
    _calls(board, stats, SUCCESS, 1)  # the second good probe closes it
    text, metrics = await _collect(clock, board, stats)
    assert 'tokenwatch_circuit_state{endpoint="tokens_batch"} 0.0' in metrics and "circuit" not in text
