"""The named controls that recovery may turn. Each is a small protocol; the pipeline
and the scheduler implement them, and recovery holds only these interfaces.

    def shrink(concurrency: ConcurrencyControl) -> None:
        concurrency.set_limit(max(1, concurrency.limit() // 2))
"""
from __future__ import annotations

from typing import Protocol


class TimeoutControl(Protocol):
    def timeout_s(self, endpoint: str) -> float: ...
    def set_timeout_s(self, endpoint: str, seconds: float) -> None: ...


class ConcurrencyControl(Protocol):
    def limit(self) -> int: ...
    def set_limit(self, value: int) -> None: ...


class BatchSizeControl(Protocol):
    def batch_size(self) -> int: ...
    def set_batch_size(self, value: int) -> None: ...


class CacheControl(Protocol):
    def clear(self) -> int: ...
    def stats(self) -> dict[str, float]: ...


class JobControl(Protocol):
    def job_ids(self) -> list[str]: ...
    async def restart(self, job_id: str) -> bool: ...
