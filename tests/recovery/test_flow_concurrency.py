"""The in-flight limit (AIMD bounded by Little's law) and the batch size, with crafted signals
(no market, no clock).

A tiny model of the processor under a rate limiter closes the loop: in flight is what the limit
allows, but never more than the limiter can keep busy (rate x hold time)."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from app.clock import ManualClock
from recovery.batching import BatchSizeLaw
from recovery.concurrency import AimdLimit
from recovery.flow import CONCURRENCY_KNOB, FlowController, register_flow_knobs
from recovery.knobs import Action, KnobRegistry

RATE = 291 / 60.0  # the limiter's pace, requests per second
BURST = 3


def inflight(law: AimdLimit, hold_s: float) -> int:
    """What the processor keeps in flight: the limit, or what the rate limiter can feed."""
    return max(1, min(round(law.limit), math.ceil(RATE * hold_s)))


def drive(law: AimdLimit, hold_s: float, samples: int, drop_rate: float = 0.0, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    seen = []
    for _ in range(samples):
        seen.append(law.update(inflight=inflight(law, hold_s), dropped=rng.random() < drop_rate, slow=False,
                               hold_s=hold_s, rate_per_s=RATE, burst=BURST))
    return seen


def test_under_3s_latency_the_limit_rises_to_the_littles_law_need_and_settles() -> None:
    law = AimdLimit(initial=4)
    limits = drive(law, hold_s=3.0, samples=300)
    need = RATE * 3.0  # 14.6 requests in flight hold 291/min at 3 s
    assert law.need(RATE) == need
    assert need <= limits[-1] <= law.ceiling(RATE, BURST) == math.ceil(need * 1.25) + BURST
    tail = limits[-200:]
    assert max(tail) - min(tail) <= 1.0  # settled: no oscillation under steady conditions


def test_at_normal_latency_the_limit_stays_small_even_when_it_started_high() -> None:
    law = AimdLimit(initial=30)
    limits = drive(law, hold_s=0.08, samples=200)
    assert limits[-1] <= law.ceiling(RATE, BURST) == 1 + BURST  # ceil(0.39 x 1.25) + 3
    assert max(limits[-100:]) - min(limits[-100:]) <= 1.0


def test_a_latency_step_lifts_the_ceiling_at_once_and_a_short_lull_does_not_drop_it() -> None:
    law = AimdLimit(initial=4)
    drive(law, hold_s=0.08, samples=100)
    law.update(inflight=4, dropped=False, slow=False, hold_s=3.0, rate_per_s=RATE, burst=BURST)
    assert law.ceiling(RATE, BURST) >= 10  # one slow batch is enough to allow more in flight
    assert law.limit >= math.ceil(RATE * law.hold_s)  # and the limit goes to Little's-law need at once
    drive(law, hold_s=3.0, samples=60)
    high = law.limit
    assert high >= RATE * 3.0
    drive(law, hold_s=0.08, samples=3)
    assert law.limit >= 0.8 * high


def test_requests_still_out_show_a_latency_step_before_their_first_answer() -> None:
    law = AimdLimit(initial=4)
    drive(law, hold_s=0.08, samples=100)
    before = law.limit
    # the market slowed to 3 s: two seconds on, the four requests out are 1.5-2 s old and none answered
    law.observe_waiting(1.8, inflight=4, rate_per_s=RATE, burst=BURST)
    assert law.hold_s is not None and law.hold_s > 0.9
    assert law.limit >= math.ceil(RATE * law.hold_s) > before     # more in flight already
    # a single old request among young ones does not move the median the processor reports; a young
    # median moves nothing
    hold, limit = law.hold_s, law.limit
    law.observe_waiting(0.05, inflight=4, rate_per_s=RATE, burst=BURST)
    assert (law.hold_s, law.limit) == (hold, limit)
    # while the application, not the limit, holds requests back, the limit stays
    idle = AimdLimit(initial=8)
    idle.observe_waiting(3.0, inflight=2, rate_per_s=RATE, burst=BURST)
    assert idle.limit == 8.0


def test_drops_back_off_by_a_tenth_down_to_the_minimum_and_never_past_the_bounds() -> None:
    law = AimdLimit(initial=20, minimum=1, maximum=32)
    assert law.update(inflight=20, dropped=True, slow=False, hold_s=3.0, rate_per_s=RATE) == 18.0
    for _ in range(100):
        law.update(inflight=1, dropped=True, slow=False, hold_s=3.0, rate_per_s=RATE)
    assert law.limit == 1.0
    law = AimdLimit(initial=4, maximum=32)
    drive(law, hold_s=60.0, samples=500)  # need 291 in flight: the bound holds
    assert law.limit == 32.0


def test_every_dropped_attempt_of_a_batch_counts() -> None:
    law = AimdLimit(initial=10)
    assert math.isclose(law.update(inflight=10, dropped=4, slow=False, hold_s=3.0, rate_per_s=RATE),
                        10 * 0.9 ** 4)  # an outage: four failed attempts of one batch


def test_a_slow_answer_counts_as_a_drop() -> None:
    law = AimdLimit(initial=10)
    assert law.update(inflight=10, dropped=False, slow=True, hold_s=3.0, rate_per_s=RATE) == 9.0


def test_the_limit_never_grows_while_the_application_is_the_bottleneck() -> None:
    law = AimdLimit(initial=6)
    for _ in range(100):  # the limiter could use 15, but only 2 are ever in flight (database, queue...)
        law.update(inflight=2, dropped=False, slow=False, hold_s=3.0, rate_per_s=RATE, burst=BURST)
    assert law.limit == 6.0


def test_with_30_percent_errors_the_limit_stays_bounded_and_above_the_minimum() -> None:
    law = AimdLimit(initial=4)
    limits = drive(law, hold_s=0.3, samples=600, drop_rate=0.3)
    assert all(1.0 <= v <= law.ceiling(RATE, BURST) for v in limits)
    assert sum(limits[-300:]) / 300 >= RATE * 0.3  # still enough in flight for the pace


@dataclass
class Box:
    v: float
    size: int = 30

    def limit(self) -> int:
        return int(self.v)

    def set_limit(self, value: int) -> None:
        self.v = value

    def batch_size(self) -> int:
        return self.size

    def set_batch_size(self, value: int) -> None:
        self.size = value


@dataclass(frozen=True)
class Batch:
    at: float
    inflight: int
    hold_s: float = 3.0
    dropped: bool = False
    tokens: int = 30
    fetch_s: float = 3.0
    ok: bool = True
    timeouts: int = 0
    timeout_s: float = 10.0
    rate_limited: int = 0

    @property
    def errors(self) -> int:
        return int(self.dropped) - self.timeouts if self.dropped else 0


@dataclass(frozen=True)
class Run:
    at: float
    rate_per_s: float = RATE
    burst: int = BURST
    inflight: int = 0
    fetch_age_s: float = 0.0


def controller() -> tuple[FlowController, Box, KnobRegistry, list[Action]]:
    clock = ManualClock(1000.0)
    knobs = KnobRegistry(clock)
    box = Box(4)
    register_flow_knobs(knobs, box)
    actions: list[Action] = []
    knobs.on_action(actions.append)
    return FlowController(knobs), box, knobs, actions


def test_the_knob_follows_the_law_at_most_once_a_second_and_only_for_moves_that_matter() -> None:
    ctl, box, _, actions = controller()
    ctl.run_done(Run(0.0))
    t = 0.0
    for i in range(400):  # about 5 batches a second for 80 s at 3 s latency
        t = i * 0.2
        ctl.batch_done(Batch(t, inflight=min(box.limit(), 15)))
        if i % 5 == 4:
            ctl.run_done(Run(t))
    assert 15 <= box.v <= ctl.law.ceiling(RATE, BURST)
    assert all(a.controller == "aimd" and a.knob == CONCURRENCY_KNOB for a in actions)
    assert 1 <= len(actions) <= 12  # the climb, not one action per batch
    assert "needed in flight" in actions[-1].reason
    settled = len(actions)
    for i in range(400, 800):  # steady: nothing more to record
        ctl.batch_done(Batch(i * 0.2, inflight=15))
        if i % 5 == 4:
            ctl.run_done(Run(i * 0.2))
    assert len(actions) == settled


def test_a_pinned_knob_is_left_alone_and_the_law_continues_from_the_pinned_value() -> None:
    ctl, box, knobs, actions = controller()
    knobs.adjust(CONCURRENCY_KNOB, 8, controller="operator", reason="/tune", actor="ann")
    for i in range(50):
        ctl.batch_done(Batch(i * 0.2, inflight=1, dropped=True))
        ctl.run_done(Run(i * 0.2))
    assert box.v == 8 and [a.controller for a in actions if a.knob == CONCURRENCY_KNOB] == ["operator"]
    knobs.release(CONCURRENCY_KNOB, actor="ann")
    ctl.batch_done(Batch(20.0, inflight=8, dropped=True))
    ctl.run_done(Run(20.0))
    assert box.v == 7 and actions[-1].controller == "aimd" and actions[-1].before == 8


def test_batch_size_halves_on_timeouts_and_failures_and_comes_back_to_30() -> None:
    law = BatchSizeLaw()
    sizes = [law.update(ok=False, timed_out=False, fetch_s=2.0, timeout_s=10.0) for _ in range(8)]
    assert sizes[:3] == [15.0, 7.5, 3.75] and sizes[-1] == 1.0  # an outage: one token per lost request
    assert law.update(ok=False, timed_out=True, fetch_s=10.0, timeout_s=10.0) == 1.0  # the bound
    back = [law.update(ok=True, timed_out=False, fetch_s=0.1, timeout_s=10.0) for _ in range(8)]
    assert back[-1] == 30.0 and back.index(30.0) <= 6


def test_batch_size_shrinks_near_the_timeout_and_settles_in_its_band() -> None:
    law = BatchSizeLaw()
    for _ in range(3):
        law.update(ok=True, timed_out=False, fetch_s=6.0, timeout_s=10.0)  # over half the timeout
    assert law.size == 30 * 0.8 ** 3
    settled = law.size
    rng = random.Random(3)
    for _ in range(200):  # answers between a quarter and half of the timeout: no reason to move
        law.update(ok=True, timed_out=False, fetch_s=rng.uniform(2.6, 4.9), timeout_s=10.0)
    assert law.size == settled


def test_at_3s_latency_with_a_10s_timeout_the_batch_stays_full() -> None:
    law = BatchSizeLaw()
    rng = random.Random(4)
    for _ in range(300):  # 30 % server errors absorbed by retries: the batch succeeded
        law.update(ok=rng.random() > 0.01, timed_out=False, fetch_s=2.4, timeout_s=10.0)
    assert law.size >= 25


def test_the_batch_knob_follows_its_law_as_the_batch_controller() -> None:
    ctl, box, _, actions = controller()
    ctl.run_done(Run(0.0))
    for i in range(10):  # ten seconds of timeouts
        ctl.batch_done(Batch(float(i), inflight=1, dropped=True, ok=False, timeouts=1, fetch_s=10.0))
        ctl.run_done(Run(float(i)))
    assert box.size == 1
    for i in range(10, 30):
        ctl.batch_done(Batch(float(i), inflight=1, fetch_s=0.1, hold_s=0.2))
        ctl.run_done(Run(float(i)))
    assert box.size == 30
    moves = [a for a in actions if a.knob == "batch_size"]
    assert moves and all(a.controller == "batch" for a in moves) and len(moves) <= 16
    assert "timed out" in moves[0].reason
