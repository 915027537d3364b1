"""Load shedding on a real pipeline with injected CPU readings: over 80 % of a core for more than two
minutes stretches cold checks (a checked cold token is next due after twice the cold interval), two
more minutes slow the profile polls; low CPU steps back one level at a time. Every change is an
Action of the ``shed`` controller."""
from __future__ import annotations

from recovery.knobs import Action, KnobRegistry
from recovery.shedding import COLD_KNOB, PROFILES_KNOB, SheddingController, register_shedding_knobs
from tokens import queries


async def test_high_cpu_stretches_cold_checks_then_profile_polls_and_low_cpu_undoes_it(
        db, clock, market, make_pipeline) -> None:
    pipeline = await make_pipeline(cold_check_interval_s=45.0, profiles_poll_interval_s=10.0,
                                   hot_score_threshold=100.0)  # only active tokens are hot
    processor, poller = pipeline.processor, pipeline.profiles
    knobs = KnobRegistry(clock)
    actions: list[Action] = []
    knobs.on_action(actions.append)
    register_shedding_knobs(knobs, processor, poller)
    shed = SheddingController(knobs, profiles_base_s=poller.interval_s)

    def cpu(share: float, seconds: int) -> None:
        for _ in range(seconds // 10):
            clock.advance(10.0)
            shed.observe(share, clock.monotonic())

    cpu(0.9, 130)  # two minutes from the first high reading: not yet more than two
    assert processor.cold_factor() == 1.0 and not actions
    cpu(0.9, 10)
    assert processor.cold_factor() == 2.0 and poller.every_s() == 10.0  # cold checks first
    mints = market.model.seed_tokens(12)
    for mint in mints:
        assert await pipeline.intake.add(mint, source="test")
    clock.advance(300.0)  # no longer fresh
    assert await processor.run_once() == 12
    waits = {}
    for mint in mints:
        tok = await db.run(lambda s, mint=mint: queries.get_token(s, mint))
        if tok.status == "monitoring" and tok.consecutive_failures == 0 :
            waits[mint] = tok.next_check_at - tok.last_check_at
    assert waits and set(waits.values()) == {90.0}  # cold: 2 x COLD_CHECK_INTERVAL_S

    cpu(0.9, 130)
    assert poller.every_s() == 30.0  # then discovery's profile polls
    polls = poller.polls
    await poller.poll_once()
    assert poller.polls == polls + 1
    clock.advance(10.0)
    assert await poller.poll_once() == 0 and poller.polls == polls + 1 and poller.skipped == 1

    cpu(0.7, 300)  # between the thresholds: stays shed
    assert processor.cold_factor() == 2.0 and poller.every_s() == 30.0
    cpu(0.2, 140)
    assert poller.every_s() == 10.0 and processor.cold_factor() == 2.0  # back in reverse order
    cpu(0.2, 130)
    assert processor.cold_factor() == 1.0

    assert [(a.knob, a.after) for a in actions] == [(COLD_KNOB, 2.0), (PROFILES_KNOB, 30.0), (PROFILES_KNOB, 10.0),
                                                    (COLD_KNOB, 1.0)]
    assert all(a.controller == "shed" and "CPU" in a.reason for a in actions)
