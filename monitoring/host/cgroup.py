"""Container limits from cgroup v1 or v2, read from small files under an injectable root.

These are plain synchronous readers of tiny pseudo-files; callers on the event loop run them
with ``asyncio.to_thread`` (``ProcessCollector`` does, and caches the limits)::

    reader = CgroupReader()                                   # /sys/fs/cgroup and /proc
    reader = CgroupReader("tests/.../cgroup_v2/limited", proc_root="tests/.../proc")
    reader.memory_limit_bytes()     # 536870912, or None when unlimited / unknown
    reader.cpu_quota_cores()        # 0.5, or None when unlimited / unknown
    effective_memory_limit(reader.memory_limit_bytes(), host_total)   # min of the two
    effective_cores(reader.cpu_quota_cores(), affinity=2, cpu_count=8) # min of the three

A value that cannot be read or parsed is ``None`` ("unknown"), never an exception.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: cgroup v1 reports "no limit" as a page-rounded LONG_MAX; anything this large is unlimited.
V1_UNLIMITED_THRESHOLD = 1 << 60


@dataclass(frozen=True, slots=True)
class CgroupLimits:
    """A snapshot of what the cgroup allows (None = unlimited or unknown)."""

    version: int | None
    memory_limit_bytes: int | None
    cpu_quota_cores: float | None


class CgroupReader:
    """Reads memory/CPU limits and usage of this process's cgroup (v2 or v1).

        limits = CgroupReader().limits()
        limits.version, limits.memory_limit_bytes, limits.cpu_quota_cores
    """

    def __init__(self, root: str | Path = "/sys/fs/cgroup", *, proc_root: str | Path = "/proc") -> None:
        self.root = Path(root)
        self.proc_root = Path(proc_root)

    # --- helpers ----------------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            return path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None

    def version(self) -> int | None:
        """2 for the unified hierarchy, 1 for the legacy one, None when neither is readable."""
        if (self.root / "cgroup.controllers").exists():
            return 2
        if (self.root / "memory").is_dir() or (self.root / "cpu").is_dir() or (self.root / "cpu,cpuacct").is_dir():
            return 1
        return None

    def _v2_dir(self) -> Path:
        """This process's own v2 group when visible (``0::/path`` in /proc/self/cgroup), else the root."""
        text = self._read(self.proc_root / "self" / "cgroup") or ""
        for line in text.splitlines():
            if line.startswith("0::"):
                rel = line[3:].strip().lstrip("/")
                candidate = self.root / rel if rel else self.root
                if rel and (candidate / "memory.max").exists():
                    return candidate
        return self.root

    def _v1_file(self, controller: str, name: str) -> Path:
        for folder in (controller, "cpu,cpuacct" if controller == "cpu" else controller):
            path = self.root / folder / name
            if path.exists():
                return path
        return self.root / controller / name

    @staticmethod
    def _int(text: str | None) -> int | None:
        if text is None:
            return None
        try:
            return int(text.split()[0])
        except (ValueError, IndexError):
            log.debug("unparseable cgroup value %r", text[:40])
            return None

    # --- memory -----------------------------------------------------------------
    def memory_limit_bytes(self) -> int | None:
        """The cgroup memory limit in bytes; None when unlimited ("max" / huge v1 value) or unknown."""
        version = self.version()
        if version == 2:
            text = self._read(self._v2_dir() / "memory.max")
            if text is None or text == "max":
                return None
            value = self._int(text)
        elif version == 1:
            value = self._int(self._read(self._v1_file("memory", "memory.limit_in_bytes")))
            if value is not None and value >= V1_UNLIMITED_THRESHOLD:
                return None
        else:
            return None
        return value if value is not None and value > 0 else None

    def memory_usage_bytes(self) -> int | None:
        """Memory charged to the cgroup (v2 ``memory.current``, v1 ``memory.usage_in_bytes``)."""
        version = self.version()
        if version == 2:
            return self._int(self._read(self._v2_dir() / "memory.current"))
        if version == 1:
            return self._int(self._read(self._v1_file("memory", "memory.usage_in_bytes")))
        return None

    # --- cpu ----------------------------------------------------------------------
    def cpu_quota_cores(self) -> float | None:
        """CPU quota as cores (``"50000 100000"`` -> 0.5); None when unlimited or unknown."""
        version = self.version()
        if version == 2:
            text = self._read(self._v2_dir() / "cpu.max")
            if not text:
                return None
            parts = text.split()
            if parts[0] == "max":
                return None
            quota = self._int(parts[0])
            period = self._int(parts[1]) if len(parts) > 1 else 100_000
        elif version == 1:
            quota = self._int(self._read(self._v1_file("cpu", "cpu.cfs_quota_us")))
            period = self._int(self._read(self._v1_file("cpu", "cpu.cfs_period_us")))
            if quota is None or quota < 0:
                return None
        else:
            return None
        if quota is None or period is None or quota <= 0 or period <= 0:
            return None
        return quota / period

    # --- host -----------------------------------------------------------------------
    def host_memory_total_bytes(self) -> int | None:
        """``MemTotal`` from ``<proc_root>/meminfo``."""
        text = self._read(self.proc_root / "meminfo") or ""
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                kb = self._int(line.split(":", 1)[1])
                return None if kb is None else kb * 1024
        return None

    def limits(self) -> CgroupLimits:
        return CgroupLimits(self.version(), self.memory_limit_bytes(), self.cpu_quota_cores())


def effective_memory_limit(cgroup_limit: int | None, host_total: int | None) -> int | None:
    """min(cgroup limit, host total), ignoring unknowns; None when both are unknown."""
    known = [v for v in (cgroup_limit, host_total) if v is not None and v > 0]
    return min(known) if known else None


def effective_cores(quota_cores: float | None, affinity: int | None = None, cpu_count: int | None = None) -> float:
    """min(cgroup quota, CPUs we may run on, CPUs present); at least a sliver, never 0.

    ``affinity``/``cpu_count`` default to this process's ``sched_getaffinity`` and ``os.cpu_count()``.
    """
    if affinity is None:
        try:
            affinity = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            affinity = None
    if cpu_count is None:
        cpu_count = os.cpu_count()
    known = [float(v) for v in (quota_cores, affinity, cpu_count) if v is not None and v > 0]
    value = min(known) if known else 1.0
    return value if math.isfinite(value) else 1.0
