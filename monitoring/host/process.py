"""This process's memory, CPU, file descriptors and threads, against the container's limits.

CPU is computed from ``cpu_times()`` deltas between two collections (never the blocking
``cpu_percent(interval=...)``); all psutil/cgroup reads happen in one worker thread per
collection, and the cgroup limits are cached (re-read every ``limits_ttl_s``).

    collector = ProcessCollector(clock=clock)                 # the real process and cgroup
    collector = ProcessCollector(psutil_process=fake, cgroup=CgroupReader(root, proc_root=p),
                                 clock=clock, cpu_count=4, affinity=2, virtual_memory=lambda: vm)
    samples = await collector.collect(clock.time())
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from app.clock import SYSTEM_CLOCK, Clock
from monitoring import metric_names as m
from monitoring.sample import Sample
from monitoring.host.cgroup import CgroupLimits, CgroupReader, effective_cores, effective_memory_limit


@dataclass(frozen=True, slots=True)
class ProcessReading:
    """One synchronous read of everything the collector needs."""

    rss: int
    cpu_seconds: float
    num_fds: int | None
    num_threads: int
    mem_total: int | None
    mem_available: int | None
    cgroup_usage: int | None
    limits: CgroupLimits | None


class ProcessCollector:
    """Collector ``process``: resident memory and its share of the effective limit, CPU per core
    and as a share of the effective cores, open fds, threads, host memory.

        registry.register(ProcessCollector(clock=clock))
    """

    name = "process"

    def __init__(
        self,
        psutil_process: Any = None,
        cgroup: CgroupReader | None = None,
        clock: Clock = SYSTEM_CLOCK,
        *,
        cpu_count: int | None = None,
        affinity: int | None = None,
        virtual_memory: Callable[[], Any] | None = None,
        limits_ttl_s: float = 60.0,
    ) -> None:
        self.process = psutil_process if psutil_process is not None else psutil.Process()
        self.cgroup = cgroup if cgroup is not None else CgroupReader()
        self.clock = clock
        self.cpu_count = cpu_count
        self.affinity = affinity
        self.virtual_memory = virtual_memory or psutil.virtual_memory
        self.limits_ttl_s = limits_ttl_s
        self._limits: CgroupLimits | None = None
        self._limits_at: float | None = None
        self._prev_cpu: float | None = None
        self._prev_mono: float | None = None

    def _read(self, refresh_limits: bool) -> ProcessReading:
        """Blocking reads; runs in a worker thread."""
        times = self.process.cpu_times()
        cpu_seconds = float(times.user) + float(times.system)
        try:
            num_fds: int | None = int(self.process.num_fds())
        except (AttributeError, psutil.Error, NotImplementedError):
            num_fds = None
        vm = self.virtual_memory()
        limits = self.cgroup.limits() if refresh_limits else None
        return ProcessReading(
            rss=int(self.process.memory_info().rss),
            cpu_seconds=cpu_seconds,
            num_fds=num_fds,
            num_threads=int(self.process.num_threads()),
            mem_total=int(vm.total) if getattr(vm, "total", None) else None,
            mem_available=int(vm.available) if getattr(vm, "available", None) is not None else None,
            cgroup_usage=self.cgroup.memory_usage_bytes(),
            limits=limits,
        )

    async def memory(self) -> tuple[int, int | None]:
        """Resident bytes and the effective limit (cgroup-aware; None when unknown), read now, off
        the loop. The memory policy (``recovery.memory``) samples with it."""
        reading = await asyncio.to_thread(self._read, self._limits is None)
        if reading.limits is not None and self._limits is None:
            self._limits, self._limits_at = reading.limits, self.clock.monotonic()
        limits = reading.limits or self._limits or CgroupLimits(None, None, None)
        return reading.rss, effective_memory_limit(limits.memory_limit_bytes, reading.mem_total)

    async def memory_share(self) -> float | None:
        """Resident memory as a share of the effective limit, read now (off the loop), or None
        when no limit is known. The alert engine measures again with it after a cleanup."""
        rss, mem_limit = await self.memory()
        return rss / mem_limit if mem_limit else None

    async def collect(self, now: float) -> list[Sample]:
        mono = self.clock.monotonic()
        refresh = self._limits_at is None or mono - self._limits_at >= self.limits_ttl_s
        reading = await asyncio.to_thread(self._read, refresh)
        if reading.limits is not None:
            self._limits, self._limits_at = reading.limits, mono
        limits = self._limits or CgroupLimits(None, None, None)

        cores = effective_cores(limits.cpu_quota_cores, self.affinity, self.cpu_count)
        mem_limit = effective_memory_limit(limits.memory_limit_bytes, reading.mem_total)
        out = [
            Sample(m.PROCESS_RESIDENT_BYTES, float(reading.rss)),
            Sample(m.PROCESS_THREADS, float(reading.num_threads)),
            Sample(m.PROCESS_EFFECTIVE_CORES, cores),
        ]
        if reading.num_fds is not None:
            out.append(Sample(m.PROCESS_OPEN_FDS, float(reading.num_fds)))
        if mem_limit:
            out.append(Sample(m.PROCESS_MEMORY_LIMIT_BYTES, float(mem_limit)))
            out.append(Sample(m.PROCESS_MEMORY_SHARE, reading.rss / mem_limit))
            # which limit that is: the container's (cgroup) or, with none set, the host's RAM
            from_cgroup = limits.memory_limit_bytes is not None and limits.memory_limit_bytes == mem_limit
            out.append(Sample(m.PROCESS_MEMORY_LIMIT_IS_CGROUP, 1.0 if from_cgroup else 0.0))
        if reading.cgroup_usage is not None:
            out.append(Sample(m.CGROUP_MEMORY_USAGE_BYTES, float(reading.cgroup_usage)))
        if reading.mem_total:
            out.append(Sample(m.SYSTEM_MEMORY_TOTAL_BYTES, float(reading.mem_total)))
            if reading.mem_available is not None:
                out.append(Sample(m.SYSTEM_MEMORY_AVAILABLE_BYTES, float(reading.mem_available)))
                used = 1.0 - reading.mem_available / reading.mem_total
                out.append(Sample(m.SYSTEM_MEMORY_USED_SHARE, min(1.0, max(0.0, used))))

        # CPU from deltas: the first collection has nothing to compare against.
        if self._prev_cpu is not None and self._prev_mono is not None:
            wall = mono - self._prev_mono
            used = reading.cpu_seconds - self._prev_cpu
            if wall > 0 and used >= 0:
                percent = used / wall * 100.0
                out.append(Sample(m.PROCESS_CPU_PERCENT, percent))
                out.append(Sample(m.PROCESS_CPU_SHARE, percent / 100.0 / cores))
        self._prev_cpu, self._prev_mono = reading.cpu_seconds, mono
        return out
