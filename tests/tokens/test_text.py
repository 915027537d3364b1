"""The one cleaner of untrusted market text (``tokens.text.clean_text``): whatever comes in,
what goes out can be written to any database, log or screen, and cleaning twice changes nothing."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, strategies as st

from tokens.text import BIDI_CONTROLS, MAX_TEXT_CHARS, clean_text

# Any code point, surrogates included (what json.loads can hand us), weighted towards the nasty ones.
nasty = st.sampled_from(list("\x00\n\r\t\x1b\x7f\x85\u2028\u2029\ufeff\u200b\u200d \ud800\udfff\udbff\udc00")
                        + list(BIDI_CONTROLS))
any_text = st.lists(st.characters(min_codepoint=0, max_codepoint=0x10FFFF) | nasty, max_size=600).map("".join)


@given(any_text, st.integers(min_value=1, max_value=MAX_TEXT_CHARS))
def test_any_text_comes_out_encodable_bounded_and_clean(value: str, limit: int) -> None:
    out = clean_text(value, limit)
    if out is None:
        return
    out.encode("utf-8")  # never raises: no surrogate survives
    assert 1 <= len(out) <= limit
    assert out == out.strip()
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in out)
    assert not set(out) & set(BIDI_CONTROLS)


@given(any_text, st.integers(min_value=1, max_value=MAX_TEXT_CHARS))
def test_cleaning_is_idempotent(value: str, limit: int) -> None:
    once = clean_text(value, limit)
    assert clean_text(once, limit) == once


@pytest.mark.parametrize(("raw", "clean"), [
    ("bad\ud800name", "bad\ufffdname"),               # a lone surrogate, legal in JSON
    ("\ud83d\ude00 pair", "\U0001F600 pair"),         # a surrogate pair given as two code points
    ("Safe\u202egnp.exe\u202c", "Safegnp.exe"),       # a right-to-left override cannot flip the screen
    ("\u200fمرحبا Token", "مرحبا Token"),             # RTL letters stay, the RTL mark goes
    ("line\nbreak\u2028x", "line break x"),          # no fake extra lines
    ("\x00nul\x1b[31m", "nul[31m"),
    ("👨\u200d👩\u200d👧 family", "👨\u200d👩\u200d👧 family"),  # ZWJ emoji sequences survive
    ("   padded   ", "padded"),
    ("<b>Bold</b> &amp;", "<b>Bold</b> &amp;"),      # HTML is escaped at render time, not here
])
def test_examples(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_nothing_left_or_not_text_is_none_and_length_is_capped() -> None:
    assert clean_text("") is None and clean_text(" \u202e\x00 ") is None and clean_text(42) is None
    assert clean_text("L" * 10_000_000) == "L" * MAX_TEXT_CHARS
    assert clean_text("abcdef", 3) == "abc"
    with pytest.raises(ValueError):
        clean_text("x", 0)
