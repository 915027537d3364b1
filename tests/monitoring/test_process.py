"""ProcessCollector with a fake psutil process: CPU from deltas, memory share of the effective limit."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.clock import ManualClock
from monitoring import metric_names as m
from monitoring.host.cgroup import CgroupReader
from monitoring.host.process import ProcessCollector

FIX = Path(__file__).parent / "fixtures"
GIB = 1024**3


class FakeProcess:
    def __init__(self) -> None:
        self.user = 10.0
        self.system = 2.0
        self.rss = 128 * 1024**2

    def cpu_times(self):
        return SimpleNamespace(user=self.user, system=self.system)

    def memory_info(self):
        return SimpleNamespace(rss=self.rss)

    def num_fds(self) -> int:
        return 42

    def num_threads(self) -> int:
        return 7


def _values(samples) -> dict[str, float]:
    return {s.name: s.value for s in samples}


@pytest.fixture
def vm():
    return SimpleNamespace(total=4 * GIB, available=3 * GIB)


async def test_cpu_from_deltas_and_share_of_quota(clock: ManualClock, vm) -> None:
    proc = FakeProcess()
    reader = CgroupReader(FIX / "cgroup_v2/limited", proc_root=FIX / "proc")  # quota 0.5 core, 512 MiB
    collector = ProcessCollector(proc, reader, clock, cpu_count=8, affinity=4, virtual_memory=lambda: vm)

    first = _values(await collector.collect(clock.time()))
    assert m.PROCESS_CPU_PERCENT not in first  # nothing to compare against yet
    assert first[m.PROCESS_EFFECTIVE_CORES] == 0.5

    clock.advance(10)
    proc.user += 1.5
    proc.system += 0.5  # 2 CPU-seconds in 10 s
    second = _values(await collector.collect(clock.time()))
    assert second[m.PROCESS_CPU_PERCENT] == pytest.approx(20.0)  # 2 / 10 = 20 % of one core
    assert second[m.PROCESS_CPU_SHARE] == pytest.approx(0.4)     # 0.2 core of a 0.5-core quota


async def test_memory_share_of_effective_limit(clock: ManualClock, vm) -> None:
    proc = FakeProcess()
    limited = CgroupReader(FIX / "cgroup_v1/limited", proc_root=FIX / "proc")  # 256 MiB
    values = _values(await ProcessCollector(proc, limited, clock, cpu_count=2, affinity=2,
                                            virtual_memory=lambda: vm).collect(clock.time()))
    assert values[m.PROCESS_MEMORY_LIMIT_BYTES] == 256 * 1024**2
    assert values[m.PROCESS_MEMORY_LIMIT_IS_CGROUP] == 1.0  # 256 MiB cgroup limit < 4 GiB host
    assert values[m.PROCESS_MEMORY_SHARE] == pytest.approx(0.5)  # 128 MiB of 256 MiB
    assert values[m.PROCESS_EFFECTIVE_CORES] == 1.5
    assert (values[m.PROCESS_OPEN_FDS], values[m.PROCESS_THREADS]) == (42, 7)
    assert values[m.SYSTEM_MEMORY_USED_SHARE] == pytest.approx(0.25)

    unlimited = CgroupReader(FIX / "cgroup_v2/unlimited", proc_root=FIX / "proc")
    values = _values(await ProcessCollector(proc, unlimited, clock, cpu_count=2, affinity=2,
                                            virtual_memory=lambda: vm).collect(clock.time()))
    # no cgroup limit: the host total (4 GiB from virtual_memory) is the limit
    assert values[m.PROCESS_MEMORY_LIMIT_BYTES] == 4 * GIB
    assert values[m.PROCESS_MEMORY_LIMIT_IS_CGROUP] == 0.0  # /status labels it "host RAM"
    assert values[m.PROCESS_MEMORY_SHARE] == pytest.approx(128 / 4096)
    assert values[m.PROCESS_EFFECTIVE_CORES] == 2.0


async def test_real_process_reads(clock: ManualClock) -> None:
    values = _values(await ProcessCollector(clock=clock).collect(clock.time()))
    assert values[m.PROCESS_RESIDENT_BYTES] > 0 and values[m.PROCESS_THREADS] >= 1
