"""A deliberately leaking component for the leak-detection tests and bench/leak_detection.py:
it keeps every payload it is handed (the line that allocates is what the report must name)."""
from __future__ import annotations


class LeakyCache:
    def __init__(self) -> None:
        self.items: list[bytes] = []

    def add(self, nbytes: int) -> None:
        self.items.append(b"\x01" * nbytes)  # LEAK

    def __len__(self) -> int:
        return len(self.items)

    @property
    def nbytes(self) -> int:
        return sum(len(i) for i in self.items)

    def clear(self) -> None:
        self.items.clear()


def leak_line() -> int:
    """The line number of the allocation above."""
    with open(__file__, encoding="utf-8") as fh:
        return next(n for n, line in enumerate(fh, 1) if line.rstrip().endswith("# LEAK"))
