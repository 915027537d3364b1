"""The batch size (1..30 tokens per market request) from batch latency and errors. A pure law.

Under a rate limit, a full batch of 30 is the most tokens per request, so the law keeps 30 unless
batches show that their size costs something:

- a batch that timed out or failed after its retries halves the size (fewer tokens are marked
  failed and backed off per lost request: during an outage the size falls to 1);
- a batch slower than ``slow_share`` (half) of the request timeout shrinks it by a fifth (it is
  close to timing out);
- a batch answered within ``fast_share`` (a quarter) of the timeout grows it by ``step`` back to 30;
- between the two it stays put: the gap is the hysteresis that keeps it from oscillating.

Random server errors that the retries absorb are no reason to shrink: a smaller batch would only
spend more requests for the same tokens.

    law = BatchSizeLaw()
    law.update(ok=False, timed_out=True, fetch_s=10.0, timeout_s=10.0)   # 15.0
    law.update(ok=True, timed_out=False, fetch_s=0.1, timeout_s=10.0)    # 20.0
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BatchSizeLaw:
    initial: float = 30.0
    minimum: int = 1
    maximum: int = 30
    slow_share: float = 0.5
    fast_share: float = 0.25
    step: float = 5.0
    size: float = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError("need 1 <= minimum <= maximum")
        if not 0 < self.fast_share < self.slow_share:
            raise ValueError("need 0 < fast_share < slow_share")
        self.size = float(min(self.maximum, max(self.minimum, self.initial)))

    def update(self, *, ok: bool, timed_out: bool, fetch_s: float, timeout_s: float) -> float:
        """One finished batch; returns the new size (a float: round it to use it)."""
        if timed_out or not ok:
            self.size = max(float(self.minimum), self.size * 0.5)
        elif fetch_s > self.slow_share * timeout_s:
            self.size = max(float(self.minimum), self.size * 0.8)
        elif fetch_s <= self.fast_share * timeout_s:
            self.size = min(float(self.maximum), self.size + self.step)
        return self.size

    def reset(self, value: float) -> None:
        self.size = float(min(self.maximum, max(self.minimum, value)))
