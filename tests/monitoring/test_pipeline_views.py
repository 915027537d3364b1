"""The /stuck and /token renders stay valid Telegram HTML whatever the names hold."""
from __future__ import annotations

from app.clock import ManualClock
from bot.callbacks import CallbackSigner
from bot.render.html import to_plain, validate_html, visible_len
from bot.views.stuck import render_stuck, stuck_keyboard
from bot.views.token import render_token_debug
from monitoring.activation_debug import FetchStep, TokenDebug
from monitoring.pipeline import StuckPage, StuckToken
from tokens.activation import ActivationRules, evaluate
from tokens.queries import TokenView

NOW = 1_700_000_000.0
HOSTILE = ["<script>&amp;</b>", "🚀" * 200, "\u202eevil\u202c name", "x" * 200, 'quote " & <i>', "\x00nul"]


def _item(i: int, name: str) -> StuckToken:
    return StuckToken(i, "M" * 44, name, name[:20], f"failing_checks:{name}", NOW - 500, 500.0, NOW - 5, None, 4)


def test_stuck_render_is_valid_html_with_hostile_names():
    page = StuckPage([_item(i, n) for i, n in enumerate(HOSTILE, start=1)], total=60, page=3, page_size=6)
    text = render_stuck(page, NOW, stuck_after_s=180)
    validate_html(text)
    plain = to_plain(text)
    assert "page 4 of 10" in plain and "<script>&amp;</b>" in plain
    assert "\u202e" not in plain and "\x00" not in plain
    assert visible_len(text) <= 4096
    keyboard = stuck_keyboard(page, CallbackSigner(b"k", ManualClock(NOW)))
    nav = [b.text for b in keyboard.inline_keyboard[-1]]
    assert nav == ["◀ Prev", "🔄", "Next ▶"]
    assert all(len(b.callback_data.encode()) <= 64 for row in keyboard.inline_keyboard for b in row)


def test_an_active_token_stuck_on_failing_checks_says_it_is_active():
    item = StuckToken(1, "A" * 44, "Live", "LIV", "failing_checks:TimeoutError", NOW - 850, 850.0, NOW - 600,
                      NOW - 700, 6, status="active")
    plain = to_plain(render_stuck(StuckPage([item], total=1), NOW, stuck_after_s=180))
    assert "failing checks ×6: TimeoutError" in plain and "in active 14" in plain
    assert "in monitoring" not in plain


def test_token_render_is_valid_html_with_hostile_names_and_errors():
    view = TokenView(1, "M" * 44, HOSTILE[0] + HOSTILE[2], HOSTILE[1], "pumpportal", "monitoring", NOW - 60,
                     NOW - 60, NOW + 5, NOW - 5, None, 3, 3, None, None, None, [], None)
    result = evaluate([{"junk": True}, None, "x"], ActivationRules(), NOW, NOW)
    debug = TokenDebug("M" * 44, True, view, [FetchStep("batch", error="TimeoutError: <slow> & stuck"),
                                             FetchStep("token_pairs", 0, 3)], "token_pairs", NOW, result)
    text = render_token_debug(debug, NOW)
    validate_html(text)
    plain = to_plain(text)
    assert "failed (TimeoutError: <slow> & stuck)" in plain and "0 pools, 3 malformed" in plain
    assert "❌ pairs_well_formed: 3 (max 0)" in plain and "would not activate" in plain
