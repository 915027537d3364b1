"""cgroup v1/v2 readers against fixture files; effective memory and CPU."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.host.cgroup import CgroupReader, effective_cores, effective_memory_limit

FIX = Path(__file__).parent / "fixtures"
PROC = FIX / "proc"
HOST_TOTAL = 2_097_152 * 1024  # MemTotal in fixtures/proc/meminfo


@pytest.mark.parametrize(
    ("root", "version", "limit", "usage", "cores"),
    [
        ("cgroup_v2/limited", 2, 536_870_912, 134_217_728, 0.5),
        ("cgroup_v2/unlimited", 2, None, 67_108_864, None),
        ("cgroup_v1/limited", 1, 268_435_456, 104_857_600, 1.5),
        ("cgroup_v1/unlimited", 1, None, 52_428_800, None),
    ],
)
def test_limits(root: str, version: int, limit: int | None, usage: int, cores: float | None) -> None:
    reader = CgroupReader(FIX / root, proc_root=PROC)
    assert reader.version() == version
    assert reader.memory_limit_bytes() == limit
    assert reader.memory_usage_bytes() == usage
    assert reader.cpu_quota_cores() == cores
    assert reader.host_memory_total_bytes() == HOST_TOTAL


def test_v2_nested_group_of_this_process() -> None:
    reader = CgroupReader(FIX / "cgroup_v2/nested", proc_root=FIX / "proc_nested")
    assert reader.memory_limit_bytes() == 1_073_741_824
    assert reader.cpu_quota_cores() == 2.5


def test_missing_or_junk_files_are_unknown_not_errors(tmp_path: Path) -> None:
    empty = CgroupReader(tmp_path, proc_root=tmp_path)
    assert empty.limits().version is None
    assert (empty.memory_limit_bytes(), empty.cpu_quota_cores(), empty.host_memory_total_bytes()) == (None, None, None)
    junk = CgroupReader(FIX / "cgroup_junk", proc_root=PROC)
    assert (junk.memory_limit_bytes(), junk.cpu_quota_cores(), junk.memory_usage_bytes()) == (None, None, None)


def test_effective_memory_is_min_with_host_total() -> None:
    limited = CgroupReader(FIX / "cgroup_v2/limited", proc_root=PROC)
    unlimited = CgroupReader(FIX / "cgroup_v1/unlimited", proc_root=PROC)
    # 512 MiB limit < 2 GiB host
    assert effective_memory_limit(limited.memory_limit_bytes(), HOST_TOTAL) == 536_870_912
    # unlimited cgroup -> the host total
    assert effective_memory_limit(unlimited.memory_limit_bytes(), HOST_TOTAL) == HOST_TOTAL
    # a cgroup limit larger than the host (common on v1) -> the host total
    assert effective_memory_limit(8 * HOST_TOTAL, HOST_TOTAL) == HOST_TOTAL
    assert effective_memory_limit(None, None) is None


def test_effective_cores_min_of_quota_affinity_count() -> None:
    assert effective_cores(0.5, affinity=4, cpu_count=8) == 0.5
    assert effective_cores(None, affinity=2, cpu_count=8) == 2.0
    assert effective_cores(6.0, affinity=8, cpu_count=4) == 4.0
    assert effective_cores(None, affinity=None, cpu_count=None) > 0
