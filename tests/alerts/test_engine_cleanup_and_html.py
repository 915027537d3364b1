"""Memory rules reclaim first; hostile labels and floods still make valid Telegram HTML."""
from __future__ import annotations

from alerts.api import Actor
from alerts.engine import AlertEngine
from delivery.store import Outbox
from simulator.telegram_html import check_message, visible_text
from tests.alerts.conftest import Harness, make_rules, make_settings, obs


async def _memory_harness(db, clock, after: float | None) -> tuple[Harness, list[str]]:
    ran: list[str] = []

    async def measure(rule, labels) -> float | None:
        return after

    settings = make_settings()
    outbox = Outbox(db, clock)
    h = Harness(db, clock, settings, make_rules(), outbox, None)  # type: ignore[arg-type]
    h.reclaimers.register("test.cache", lambda: ran.append("cache cleared"))
    h.engine = AlertEngine(db, clock, settings, h.rules, outbox, measure=measure, reclaimers=h.reclaimers)
    await h.engine.start()
    return h, ran


async def test_memory_back_under_after_cleanup_does_not_fire(db, clock):
    h, ran = await _memory_harness(db, clock, after=0.55)
    await h.feed(obs("memory_high", 0.91, threshold=0.8))
    assert await h.rows() == []
    assert ran == ["cache cleared"]
    [cleanup] = await h.events("cleanup")
    assert "back under" in cleanup.detail and "91%" in cleanup.detail and "55%" in cleanup.detail
    assert "gc.collect" in cleanup.detail
    await h.engine.close()


async def test_memory_still_over_after_cleanup_fires_with_before_and_after(db, clock):
    h, ran = await _memory_harness(db, clock, after=0.88)
    await h.feed(obs("memory_high", 0.93, threshold=0.8))
    [message] = await h.messages()
    shown = visible_text(message.text)
    assert "Memory at 88% of the limit" in shown and "93% before cleanup, 88% after" in shown
    assert ran == ["cache cleared"]
    await h.engine.close()


HOSTILE = ['<b>bold</b>', 'a & b', '"quoted"', "</a><script>x</script>", "&amp;&#0;&bogus;", "\u202eevil",
           "🚀" * 300, "x" * 5000, "<tg-spoiler>", "'; DROP TABLE"]


async def test_hostile_labels_and_token_names_render_valid_html(harness):
    series = [obs("stuck_tokens", 1, threshold=0, token=name, reason=name, context={"token": name, "reason": name})
              for name in HOSTILE]
    series += [obs("api_errors", 9, threshold=5, endpoint=name, context={"endpoint": name}) for name in HOSTILE[:3]]
    await harness.feed(*series)
    [incident] = [i for i in await harness.engine.open_incidents() if i.group == "api"]
    await harness.engine.escalate(incident.id, Actor(1, "<Ann & co>"))
    await harness.engine.acknowledge(incident.id, Actor(1, "<Ann & co>"))
    rows = await harness.rows()
    assert len(rows) >= 4
    for row in rows:
        assert check_message(row.text, "HTML") is None, row.text[:200]
    assert any("<Ann & co>" in visible_text(r.text) for r in rows)


async def test_any_number_of_members_stays_under_the_limit(harness):
    # many distinct rules and series: every line kind (roots, consequences, floods) in one message
    await harness.feed(obs("market_api_down", 0, endpoint="e"))
    await harness.advance(30)
    await harness.feed(obs("market_api_down", 0, endpoint="e"))
    big = [obs("pipeline_stalled", 0, stage=f"stage<{i}>" * 20, context={"stage": f"<{i}>" * 40}) for i in range(300)]
    await harness.feed(*big)
    edit = (await harness.last_edit()).text
    assert check_message(edit, "HTML") is None
    assert "more line" in visible_text(edit) or "×300" in visible_text(edit)
