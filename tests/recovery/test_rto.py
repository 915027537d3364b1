"""The RFC 6298 timer with crafted samples (first sample, convergence, doubling, clamps), the
controller that turns the ``timeout:<endpoint>`` knobs without flooding the action stream, and
Karn's rule in the real client (a retried request gives no sample)."""
from __future__ import annotations

import itertools

import aiohttp
import pytest
from aiohttp import web

from app.clock import ManualClock
from recovery.knobs import Action, KnobRegistry
from recovery.rto import RtoBounds, RtoController, RtoState, on_expiry, on_sample, worth_adjusting
from tokens.api_stats import ApiStats
from tokens.dexscreener import DexScreenerClient, EndpointTimeouts
from tokens.ratelimit import RateLimiter

B = RtoBounds(1.0, 30.0)
WIDE = RtoBounds(0.01, 60.0)
EP = "tokens_batch"


def test_the_first_sample_sets_srtt_and_half_of_it_as_rttvar() -> None:
    s = on_sample(RtoState(), 0.5, WIDE)
    assert (s.srtt, s.rttvar, s.rto) == (0.5, 0.25, 1.5)  # 0.5 + 4 x 0.25


def test_later_samples_follow_the_rfc_gains() -> None:
    s = on_sample(on_sample(RtoState(), 0.5, WIDE), 0.3, WIDE)
    # RTTVAR = 3/4 x 0.25 + 1/4 x |0.5 - 0.3| = 0.2375 (with the OLD srtt); SRTT = 7/8 x 0.5 + 1/8 x 0.3 = 0.475
    assert s.rttvar == pytest.approx(0.2375) and s.srtt == pytest.approx(0.475)
    assert s.rto == pytest.approx(0.475 + 4 * 0.2375)


def test_steady_samples_converge_on_the_latency() -> None:
    s = RtoState()
    for _ in range(200):
        s = on_sample(s, 0.4, WIDE)
    assert s.srtt == pytest.approx(0.4) and s.rttvar == pytest.approx(0.0, abs=1e-6)
    assert s.rto == pytest.approx(0.4, abs=1e-4)
    # with the shipped lower bound the timeout rests on it
    assert on_sample(s, 0.4, B).rto == 1.0


def test_a_latency_jump_raises_the_timeout_past_the_new_latency_at_once() -> None:
    s = RtoState()
    for _ in range(50):
        s = on_sample(s, 0.2, B)
    s = on_sample(s, 3.0, B)  # the market slows to 3 s (the latency phase)
    assert s.rto is not None and s.rto > 3.0
    for _ in range(50):
        s = on_sample(s, 3.0, B)
    assert s.srtt == pytest.approx(3.0, rel=0.01) and s.rto is not None and 3.0 < s.rto < 3.5


def test_an_expiry_doubles_up_to_the_bound_and_a_sample_recomputes() -> None:
    s = on_sample(RtoState(), 1.0, B)  # rto 3
    rtos = []
    for _ in range(5):
        s = on_expiry(s, B, current_s=0.0)
        rtos.append(s.rto)
    assert rtos == [6.0, 12.0, 24.0, 30.0, 30.0] and s.backoffs == 5
    s = on_sample(s, 1.0, B)  # the next valid sample: back to SRTT + 4 RTTVAR
    assert s.backoffs == 0 and s.rto == pytest.approx(1.0 + 4 * (0.75 * 0.5))


def test_an_expiry_before_any_sample_doubles_the_configured_timeout() -> None:
    assert on_expiry(RtoState(), B, current_s=10.0).rto == 20.0


def test_clamps() -> None:
    assert on_sample(RtoState(), 20.0, B).rto == 30.0   # 20 + 4 x 10 = 60
    assert on_sample(RtoState(), 0.001, B).rto == 1.0   # 3 ms


def test_only_moves_of_more_than_a_fifth_or_onto_a_bound_are_worth_an_action() -> None:
    assert not worth_adjusting(2.0, 2.0, B)
    assert not worth_adjusting(2.0, 2.35, B) and worth_adjusting(2.0, 2.5, B)
    assert not worth_adjusting(2.0, 1.7, B) and worth_adjusting(2.0, 1.5, B)
    assert worth_adjusting(1.1, 1.0, B) and worth_adjusting(28.0, 30.0, B)  # onto a bound


def controller(default_s: float = 10.0) -> tuple[RtoController, EndpointTimeouts, KnobRegistry, list[Action]]:
    knobs = KnobRegistry(ManualClock())
    seen: list[Action] = []
    knobs.on_action(seen.append)
    timeouts = EndpointTimeouts(default_s)
    return RtoController(knobs, timeouts, (EP, "token_pairs"), B), timeouts, knobs, seen


def test_a_steady_api_makes_one_action_then_none() -> None:
    rto, timeouts, knobs, seen = controller()
    jitter = itertools.cycle([0.15, 0.2, 0.25, 0.22, 0.18])
    for _ in range(500):
        rto.sample(EP, next(jitter))
    # the first sample moved 10 s (API_TIMEOUT_S) to the lower bound; nothing since
    assert [(a.controller, a.knob, a.before, a.after) for a in seen] == [("rto", "timeout:tokens_batch", 10.0, 1.0)]
    assert timeouts.timeout_s(EP) == 1.0 == knobs.value("timeout:tokens_batch")
    assert timeouts.timeout_s("token_pairs") == 10.0  # per endpoint


def test_a_slow_market_raises_the_timeout_in_a_few_actions() -> None:
    rto, timeouts, _, seen = controller()
    for _ in range(100):
        rto.sample(EP, 0.2)
    for _ in range(100):
        rto.sample(EP, 3.0)
    assert 3.0 < timeouts.timeout_s(EP) < 4.0
    # up at once (1 -> 3.35 s on the first slow answer), overshoots while RTTVAR is high, settles:
    # a handful of actions for a change of regime, then none while it stays slow
    assert seen[1].after > 3.0 and 3 <= len(seen) <= 8 and all(a.controller == "rto" for a in seen)
    before = len(seen)
    for _ in range(200):
        rto.sample(EP, 3.0)
    assert len(seen) == before


def test_concurrent_timeouts_double_once_per_round() -> None:
    rto, timeouts, _, seen = controller()
    rto.sample(EP, 0.5)  # 1.5 s
    for _ in range(4):   # four requests in flight with 1.5 s all time out
        rto.expired(EP, 1.5)
    assert timeouts.timeout_s(EP) == 3.0
    rto.expired(EP, 3.0)  # one that had the doubled timeout: doubles again
    assert timeouts.timeout_s(EP) == 6.0
    assert seen[-1].reason == "timed out after 3 s: doubled (2 in a row)"


def test_an_operator_pin_holds() -> None:
    rto, timeouts, knobs, seen = controller()
    knobs.adjust("timeout:tokens_batch", 5.0, controller="operator", reason="/tune", actor="ann")
    for _ in range(20):
        rto.sample(EP, 3.0)
    assert timeouts.timeout_s(EP) == 5.0 and [a.controller for a in seen] == ["operator"]


async def test_karn_a_retried_request_gives_no_sample() -> None:
    """A server that fails every other request: each call is answered on its retry, never a sample."""
    flaky = itertools.count()
    always_ok = False

    async def pairs(request: web.Request) -> web.Response:
        if not always_ok and next(flaky) % 2 == 0:
            return web.Response(status=503)
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/token-pairs/v1/solana/{mint}", pairs)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def no_sleep(_: float) -> None:
        return None

    rto, timeouts, _, seen = controller()
    try:
        async with aiohttp.ClientSession() as session:
            stats = ApiStats()
            client = DexScreenerClient(f"http://127.0.0.1:{port}", session, RateLimiter(60_000, burst=50), stats,
                                       timeouts, sleep=no_sleep, latency_observer=rto)
            for _ in range(5):
                assert (await client.fetch_token_pairs("M" * 44))[0] == []
            assert stats.snapshot()["token_pairs"].requests == 10  # 5 answered, each on its retry
            assert seen == [] and timeouts.timeout_s("token_pairs") == 10.0
            always_ok = True
            await client.fetch_token_pairs("M" * 44)  # answered at once: a sample
            assert [a.knob for a in seen] == ["timeout:token_pairs"] and timeouts.timeout_s("token_pairs") == 1.0
    finally:
        await runner.cleanup()
