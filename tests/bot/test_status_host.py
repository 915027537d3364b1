"""The /status host section: memory against its limit, CPU, loop lag, database and API health,
read from the collectors' latest samples; valid Telegram HTML whatever the endpoint names are."""
from __future__ import annotations

from app.clock import ManualClock
from delivery.html import validate_html
from bot.status_host import host_section
from monitoring import metric_names as m
from monitoring.collector import CollectorRegistry
from monitoring.sample import Sample


class Fixed:
    name = "fixed"

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    async def collect(self, now: float) -> list[Sample]:
        return self.samples


async def _section(registry: CollectorRegistry) -> str:
    await registry.run_collection()
    snapshot = registry.coordinator.latest
    return await host_section(None, snapshot, snapshot.at)


async def test_host_section_shows_memory_cpu_lag_and_api_health():
    clock = ManualClock()
    registry = CollectorRegistry(clock=clock)
    hostile = "tokens<b>&\u202e"
    registry.register(Fixed([
        Sample(m.PROCESS_RESIDENT_BYTES, 512 * 2**20),
        Sample(m.PROCESS_MEMORY_LIMIT_BYTES, 2048 * 2**20),
        Sample(m.PROCESS_MEMORY_SHARE, 0.25),
        Sample(m.PROCESS_CPU_PERCENT, 37.0),
        Sample(m.PROCESS_CPU_SHARE, 0.185),
        Sample(m.PROCESS_EFFECTIVE_CORES, 2.0),
        Sample(m.LOOP_LAG_SECONDS, 0.004),
        Sample(m.LOOP_LAG_MAX_SECONDS, 0.25),
        Sample(m.DB_UP, 1.0),
        Sample(m.API_REQUESTS_TOTAL, 120, {"endpoint": hostile}),
        Sample(m.API_LATENCY_P95_SECONDS, 0.180, {"endpoint": hostile}),
        Sample(m.API_ERROR_RATE, 0.05, {"endpoint": hostile}),
        Sample(m.API_RATE_LIMITED_TOTAL, 40, {"endpoint": hostile}),  # since start: not what /status shows
        Sample(m.API_TIMEOUTS_TOTAL, 9, {"endpoint": hostile}),
        Sample(m.API_WINDOW_RATE_LIMITED, 3, {"endpoint": hostile}),
        Sample(m.API_WINDOW_TIMEOUTS, 1, {"endpoint": hostile}),
    ]))
    text = await _section(registry)

    validate_html(text)
    assert "512 MiB of 2,048 MiB (25%)" in text
    # 37 % of a core over 2 cores = 18.5 %, rounded half up like every CPU figure -> 19 %
    assert "37% of a core" in text and "19% of 2 cores" in text
    assert "Database: up" in text
    assert "(5m): p95 180 ms, errors 5%, 429s 3, timeouts 1" in text
    assert "Loop lag: 4 ms (max 250 ms)" in text
    assert "tokens&lt;b&gt;&amp;" in text


async def test_host_section_before_any_collection_says_unknown():
    text = await _section(CollectorRegistry(clock=ManualClock()))
    validate_html(text)
    assert "Memory: — of —" in text


async def test_cpu_figures_round_alike_and_host_ram_is_named():
    clock = ManualClock()
    registry = CollectorRegistry(clock=clock)
    registry.register(Fixed([
        Sample(m.PROCESS_RESIDENT_BYTES, 300 * 2**20),
        Sample(m.PROCESS_MEMORY_LIMIT_BYTES, 24_106 * 2**20),
        Sample(m.PROCESS_MEMORY_LIMIT_IS_CGROUP, 0.0),  # no container limit: the limit is the host's RAM
        Sample(m.PROCESS_MEMORY_SHARE, 300 / 24_106),
        Sample(m.PROCESS_CPU_PERCENT, 3.0),
        Sample(m.PROCESS_CPU_SHARE, 0.015),  # 3 % / 2 cores
        Sample(m.PROCESS_EFFECTIVE_CORES, 2.0),
    ]))
    text = await _section(registry)
    validate_html(text)
    # 300 / 24,106 = 1.24 % -> 1 %; the limit is labelled as host RAM
    assert "Memory: 300 MiB of 24,106 MiB host RAM (1%)" in text
    # 3 % of a core over 2 cores = 1.5 %: shown as 1.5 %, not as the old "1%"
    assert "CPU: 3% of a core, 1.5% of 2 cores" in text


async def test_a_container_limit_is_named_as_such():
    clock = ManualClock()
    registry = CollectorRegistry(clock=clock)
    registry.register(Fixed([
        Sample(m.PROCESS_RESIDENT_BYTES, 256 * 2**20),
        Sample(m.PROCESS_MEMORY_LIMIT_BYTES, 512 * 2**20),
        Sample(m.PROCESS_MEMORY_LIMIT_IS_CGROUP, 1.0),
        Sample(m.PROCESS_MEMORY_SHARE, 0.5),
    ]))
    text = await _section(registry)
    assert "Memory: 256 MiB of 512 MiB container limit (50%)" in text


async def test_a_failing_collector_is_named_on_status():
    class Broken:
        name = "redis<b>"

        async def collect(self, now: float) -> list[Sample]:
            raise ConnectionError("refused <tcp> & gone")

    registry = CollectorRegistry(clock=ManualClock())
    registry.register(Broken())
    text = await _section(registry)
    validate_html(text)
    assert "⚠️ collector redis&lt;b&gt; failing: ConnectionError: refused &lt;tcp&gt; &amp; gone" in text
