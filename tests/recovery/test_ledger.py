"""The action ledger on SQLite and PostgreSQL: every action written, outcomes once known, operator
pins surviving a restart, and nothing lost while the database cannot be written."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.clock import ManualClock
from app.db import Database, make_engine
from recovery.control import Controls
from recovery.knobs import Action, Knob, KnobRegistry
from recovery.ledger import ActionLedger
from recovery.ledger_queries import actions_between, get_action, load_pins, recent_actions
from tests.recovery.knob_box import Box

T0 = 1_700_000_000.0


def service(db: Database, clock: ManualClock, **kw) -> tuple[KnobRegistry, ActionLedger, dict[str, Box]]:
    """The recovery parts as build_recovery makes them, over two knobs."""
    reg = KnobRegistry(clock)
    boxes = {"fetch_concurrency": Box(4), "timeout:tokens_batch": Box(5.0)}
    reg.register(Knob("fetch_concurrency", "count", 1, 32, boxes["fetch_concurrency"].get,
                      boxes["fetch_concurrency"].set, integer=True))
    reg.register(Knob("timeout:tokens_batch", "s", 0.5, 30, boxes["timeout:tokens_batch"].get,
                      boxes["timeout:tokens_batch"].set))
    return reg, ActionLedger(db, clock, reg, **kw), boxes


async def test_every_action_is_written_and_read_back_by_time(db):
    clock = ManualClock(T0)
    reg, ledger, _ = service(db, clock)
    reg.adjust("timeout:tokens_batch", 8.0, controller="rto", reason="p95 2.4s over 2s")
    clock.advance(10)
    reg.record(Action(clock.time(), "memory", None, None, None, "share 91%", detail="gc 12 MB, caches 30 MB"))
    clock.advance(10)
    reg.adjust("fetch_concurrency", 12, controller="aimd", reason="no drops at 4")
    assert ledger.queued == 3 and await recent_actions(db) == []   # nothing written on the hot path
    assert await ledger.flush() == 3
    newest = await recent_actions(db, limit=2)
    assert [a.describe() for a in newest] == ["fetch_concurrency 4 → 12 by aimd: no drops at 4",
                                              "memory: gc 12 MB, caches 30 MB (share 91%)"]
    first = (await actions_between(db, T0, T0 + 5))[0]
    assert (first.controller, first.knob, first.before, first.after, first.unit) == ("rto", "timeout:tokens_batch",
                                                                                     5.0, 8.0, "s")
    assert first.describe() == "timeout:tokens_batch 5s → 8s by rto: p95 2.4s over 2s"
    assert [a.id for a in await actions_between(db, T0 + 5, T0 + 30)] == [2, 3]


async def test_outcomes_once_known(db):
    clock = ManualClock(T0)
    reg, ledger, _ = service(db, clock, outcome_after_s=300)
    reg.adjust("timeout:tokens_batch", 8.0, controller="rto", reason="p95 2.4s")          # 1: moved further
    reg.adjust("fetch_concurrency", 8, controller="aimd", reason="no drops")              # 2: reversed
    await ledger.flush()
    clock.advance(40)
    reg.adjust("timeout:tokens_batch", 12.0, controller="rto", reason="p95 3.5s")         # 3: held
    reg.adjust("fetch_concurrency", 4, controller="aimd", reason="429s")                  # 4: reported
    await ledger.flush()
    ledger.report_outcome("aimd", "fetch_concurrency", "no 429 at the next check")
    await ledger.flush()
    assert (await get_action(db, 1)).outcome == "not enough: moved further by rto after 40s"
    assert (await get_action(db, 2)).outcome == "reversed by aimd after 40s"
    assert (await get_action(db, 4)).outcome == "no 429 at the next check"
    assert (await get_action(db, 3)).outcome is None
    clock.advance(300)
    await ledger.flush()
    assert (await get_action(db, 3)).outcome == "held: no further change for 5m 00s"


async def test_a_pin_and_a_revert_survive_a_restart(db_url):
    clock = ManualClock(T0)
    db = Database(make_engine(db_url), retry_base_s=0.01)
    reg, ledger, boxes = service(db, clock)
    controls = Controls(reg, ledger, clock)
    reg.adjust("timeout:tokens_batch", 9.0, controller="rto", reason="p95 3s")
    await ledger.flush()
    assert (await controls.set("fetch_concurrency", "8", "@ann")).text == \
        "fetch_concurrency 4 → 8, pinned by @ann; /tune fetch_concurrency auto hands it back."
    reverted = await controls.revert(1, "@bob")
    assert reverted.changed and reverted.text.startswith("timeout:tokens_batch back to 5s (#1 reverted)")
    assert (await controls.revert(1, "@bob")).text == "Action #1 was already reverted by @bob."
    await db.dispose()

    # a new process on the same database: the pins come back before any controller runs
    db2 = Database(make_engine(db_url), retry_base_s=0.01)
    try:
        reg2, ledger2, boxes2 = service(db2, clock)
        assert await ledger2.restore_pins() == 2
        assert boxes2["fetch_concurrency"].v == 8 and boxes2["timeout:tokens_batch"].v == 5.0
        assert reg2.pinned("fetch_concurrency").actor == "@ann"
        assert reg2.adjust("fetch_concurrency", 2, controller="aimd", reason="429s") is None   # still pinned
        original = await get_action(db2, 1)
        assert (original.reverted_by, original.outcome) == ("@bob", "reverted by @bob")
        assert (await get_action(db2, 3)).revert_of == 1
        # handed back: the pin is gone after the next restart too
        assert (await Controls(reg2, ledger2, clock).auto("fetch_concurrency", "@ann")).changed
        assert [p.knob for p in await load_pins(db2)] == ["timeout:tokens_batch"]
        assert reg2.adjust("fetch_concurrency", 2, controller="aimd", reason="429s") == 2
    finally:
        await db2.dispose()


async def test_a_database_outage_loses_nothing_and_the_queue_is_bounded(sqlite_db, tmp_path: Path):
    clock = ManualClock(T0)
    down = Database(make_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}"), retries=0)
    reg, ledger, _ = service(down, clock, queue_max=100)
    for i in range(5):
        reg.adjust("fetch_concurrency", 5 + i, controller="aimd", reason=f"step {i}")
    assert await ledger.flush() == 0
    assert ledger.queued == 5 and ledger.failing is not None
    ledger.db = sqlite_db                      # the database is back
    assert await ledger.flush() == 5 and ledger.failing is None and ledger.queued == 0
    assert [a.after for a in await actions_between(sqlite_db, T0, T0 + 1)] == [5, 6, 7, 8, 9]
    await down.dispose()
    # past the bound the oldest are dropped, and counted
    for i in range(150):
        reg.adjust("fetch_concurrency", 1 + i % 2, controller="aimd", reason="flip")
    assert ledger.queued == 100 and ledger.dropped == 50


@pytest.mark.parametrize("raw, answer", [
    ("fetch_concurency", "No control named 'fetch_concurency'; did you mean fetch_concurrency?"),
    ("timeout", "No control named 'timeout'; did you mean timeout:tokens_batch?"),
])
async def test_unknown_knobs_answer_the_closest_names(sqlite_db, raw, answer):
    reg, ledger, _ = service(sqlite_db, ManualClock(T0))
    assert (await Controls(reg, ledger, ManualClock(T0)).set(raw, "8", "@ann")).text == answer


@pytest.mark.parametrize("knob, raw, answer", [
    ("fetch_concurrency", "64", "64 is outside fetch_concurrency's range 1–32; it stays at 4."),
    ("fetch_concurrency", "2.5", "fetch_concurrency takes whole numbers, not '2.5'; allowed 1–32, it stays at 4."),
    ("fetch_concurrency", "lots", "'lots' is not a value for fetch_concurrency (count); allowed 1–32, it stays at 4."),
    ("timeout:tokens_batch", "100ms", "100 ms is outside timeout:tokens_batch's range 500 ms–30s; it stays at 5s."),
    ("timeout:tokens_batch", "nan", "'nan' is not a value for timeout:tokens_batch (s); allowed 500 ms–30s, it stays at 5s."),
])
async def test_invalid_values_are_refused_and_the_running_one_kept(sqlite_db, knob, raw, answer):
    clock = ManualClock(T0)
    reg, ledger, boxes = service(sqlite_db, clock)
    result = await Controls(reg, ledger, clock).set(knob, raw, "@ann")
    assert (result.ok, result.changed, result.text) == (False, False, answer)
    assert boxes["fetch_concurrency"].v == 4 and boxes["timeout:tokens_batch"].v == 5.0
    assert reg.pinned(knob) is None and ledger.queued == 0 and await recent_actions(sqlite_db) == []


async def test_values_in_the_knobs_unit(sqlite_db):
    clock = ManualClock(T0)
    reg, ledger, boxes = service(sqlite_db, clock)
    controls = Controls(reg, ledger, clock)
    assert (await controls.set("timeout:tokens_batch", "1500ms", "@ann")).changed
    assert boxes["timeout:tokens_batch"].v == 1.5
    assert (await controls.set("timeout:tokens_batch", "1m", "@ann")).text.startswith("1m 00s is outside")
    same = await controls.set("fetch_concurrency", "4", "@ann")   # the running value: pinned there, recorded
    assert same.text == "fetch_concurrency stays at 4, now pinned by @ann; /tune fetch_concurrency auto hands it back."
    assert (await recent_actions(sqlite_db, limit=1))[0].describe() == "fetch_concurrency pinned at 4 by @ann: pinned with /tune"
