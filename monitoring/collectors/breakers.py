"""The market client's circuit breakers and request timeouts, per endpoint.

    registry.register(BreakerCollector(pipeline.breakers, pipeline.client))
    # tokenwatch_circuit_state{endpoint="tokens_batch"} 2.0          (0 closed, 1 half-open, 2 open)
    # tokenwatch_circuit_retry_in_seconds{endpoint="tokens_batch"} 12.4
    # tokenwatch_circuit_opened_total{endpoint="tokens_batch"} 3.0
    # tokenwatch_api_timeout_seconds{endpoint="tokens_batch"} 2.0
"""
from __future__ import annotations

from monitoring import metric_names as m
from monitoring.sample import Sample
from tokens.breaker import STATE_VALUES, BreakerBoard
from tokens.dexscreener import DexScreenerClient


class BreakerCollector:
    """Collector ``breakers``: the state of each endpoint's breaker and the timeout in force."""

    name = "breakers"

    def __init__(self, breakers: BreakerBoard, client: DexScreenerClient | None = None) -> None:
        self.breakers = breakers
        self.client = client

    async def collect(self, now: float) -> list[Sample]:
        out: list[Sample] = []
        for endpoint in self.breakers.endpoints:
            breaker = self.breakers.get(endpoint)
            labels = {"endpoint": endpoint}
            out.append(Sample(m.CIRCUIT_STATE, STATE_VALUES[breaker.state], labels))
            out.append(Sample(m.CIRCUIT_RETRY_IN_SECONDS, breaker.retry_in_s(), labels))
            out.append(Sample(m.CIRCUIT_OPENED_TOTAL, float(breaker.opened), labels))
            if self.client is not None:
                out.append(Sample(m.API_TIMEOUT_SECONDS, self.client.timeout_s(endpoint), labels))
        return out
