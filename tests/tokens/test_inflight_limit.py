"""The processor's explicit in-flight limit against the local market with added latency: a fixed
limit of 4 never has more than 4 requests at the market at once; with recovery's flow controller
the limit rises (through the knob registry) and the market sees more in flight. Runs are driven by
hand on the ManualClock (one second per run); the market answers after a real 0.4 s."""
from __future__ import annotations

from recovery.flow import CONCURRENCY_KNOB, wire_flow
from recovery.knobs import Action, KnobRegistry

RUNS = 12


async def _seed(pipeline, market, n: int) -> None:
    for mint in market.model.seed_tokens(n):
        assert await pipeline.intake.add(mint, source="test")


async def _drive(pipeline, clock, market, runs: int = RUNS) -> None:
    for _ in range(runs):
        await pipeline.processor.run_once()
        clock.advance(1.0)
        if market.stats.max_in_flight > 4:
            return


async def test_a_fixed_limit_holds_at_the_market(db, clock, market, make_pipeline) -> None:
    pipeline = await make_pipeline(batch_size=1, fetch_concurrency=4, run_budget_s=0.5)
    await _seed(pipeline, market, 120)
    market.faults.set(latency_ms=400)
    await _drive(pipeline, clock, market, runs=4)
    await pipeline.processor.close()
    assert market.stats.requests["tokens"] > 4  # it did work, several runs of it
    assert market.stats.max_in_flight == 4
    assert pipeline.processor.max_batches_in_flight == 4


async def _with_flow(pipeline, clock, market) -> list[Action]:
    """Recovery's flow controller on the processor (batch size pinned to 1), 300 tokens due; the
    knob actions it records."""
    knobs = KnobRegistry(clock)
    actions: list[Action] = []
    knobs.on_action(actions.append)
    pipeline.processor.flow = wire_flow(knobs, pipeline.processor)
    knobs.adjust("batch_size", 1, controller="operator", reason="one token per request", actor="test")  # pinned
    await _seed(pipeline, market, 300)
    return actions


async def test_the_flow_controller_raises_the_limit_under_latency(db, clock, market, make_pipeline) -> None:
    pipeline = await make_pipeline(batch_size=1, fetch_concurrency=4, run_budget_s=0.5)
    actions = await _with_flow(pipeline, clock, market)
    market.faults.set(latency_ms=400)
    await _drive(pipeline, clock, market)
    await pipeline.processor.close()
    assert market.stats.max_in_flight > 4
    assert pipeline.processor.limit() > 4
    moves = [a for a in actions if a.knob == CONCURRENCY_KNOB]
    assert moves and all(a.controller == "aimd" for a in moves)
    assert moves[0].before == 4 and moves[-1].after == pipeline.processor.limit()
    assert pipeline.processor.batch_size() == 1  # the operator's pin holds
    assert market.stats.served_429 == 0


async def test_requests_still_out_raise_the_limit_before_any_answer(db, clock, market, make_pipeline) -> None:
    # a latency step: the market takes 6 s to answer. The first slow answer would come one whole round
    # trip later; the ages of the requests still out show it after a run or two.
    pipeline = await make_pipeline(batch_size=1, fetch_concurrency=4, run_budget_s=0.5)
    actions = await _with_flow(pipeline, clock, market)
    market.faults.set(latency_ms=6000)
    for _ in range(3):
        await pipeline.processor.run_once()
        clock.advance(1.0)
        if pipeline.processor.limit() > 4:
            break
    answered = pipeline.processor.counters.checks
    limit = pipeline.processor.limit()
    await pipeline.processor.close()
    assert answered == 0                      # no answer had come back
    assert limit > 4                          # yet more are allowed in flight
    moves = [a for a in actions if a.knob == CONCURRENCY_KNOB]
    assert moves and moves[0].before == 4 and moves[0].controller == "aimd"
