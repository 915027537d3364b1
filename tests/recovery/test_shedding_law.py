"""Load shedding's law: enter after CPU over 80 % for more than 2 minutes, leave after under 60 % as
long, one level at a time; spikes and readings between the thresholds move nothing."""
from __future__ import annotations

from recovery.shedding import LoadShedder


def feed(law: LoadShedder, readings: list[float], start: float = 0.0, every_s: float = 10.0) -> list[int | None]:
    return [law.observe(cpu, start + i * every_s) for i, cpu in enumerate(readings)]


def test_enters_only_after_more_than_two_minutes_over_80_percent() -> None:
    law = LoadShedder()
    changes = feed(law, [0.95] * 13)  # 0..120 s: exactly two minutes is not more than two
    assert law.level == 0 and set(changes) == {None}
    assert law.observe(0.95, 130.0) == 1


def test_a_spike_or_a_dip_restarts_the_count() -> None:
    law = LoadShedder()
    feed(law, [0.95] * 10 + [0.70] + [0.95] * 10)  # one reading between the thresholds resets the hold
    assert law.level == 0
    law = LoadShedder()
    assert set(feed(law, [0.95, 0.10] * 30)) == {None}  # flapping never sheds


def test_climbs_one_level_per_hold_up_to_the_top_and_steps_down_the_same_way() -> None:
    law = LoadShedder()
    changes = feed(law, [0.9] * 40)  # 390 s over 80 %
    assert [c for c in changes if c is not None] == [1, 2]  # at 130 s and 260 s; never past max_level
    assert law.level == 2
    changes = feed(law, [0.7] * 30, start=400.0)  # between 60 and 80 %: stays shed (hysteresis)
    assert law.level == 2 and set(changes) == {None}
    changes = feed(law, [0.3] * 40, start=700.0)
    assert [c for c in changes if c is not None] == [1, 0]
    assert law.level == 0


def test_no_reading_is_no_evidence() -> None:
    law = LoadShedder()
    feed(law, [0.95] * 10)
    assert law.observe(None, 100.0) is None and law.observe(float("nan"), 110.0) is None
    assert law.observe(0.95, 130.0) == 1  # the hold went on across the missing readings


def test_hot_from_the_first_reading_over_80_percent_until_shed_levels_are_stepped_down() -> None:
    """``hot`` gates optional costly work (the memory policy's tracemalloc diagnosis): no hold time."""
    law = LoadShedder()
    assert not law.hot
    law.observe(0.95, 0.0)
    assert law.hot and law.level == 0
    law.observe(0.70, 10.0)                     # between the thresholds
    assert not law.hot
    feed(law, [0.9] * 14, start=20.0)           # shed a level
    law.observe(0.70, 200.0)
    assert law.level == 1 and law.hot           # still shedding: still hot
