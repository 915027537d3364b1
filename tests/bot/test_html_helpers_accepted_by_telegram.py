"""Properties of the project's HTML helpers (delivery.html), judged by the independent oracle
(simulator.telegram_html, written from Telegram's documented rules): escaped text of any kind
is accepted and shown verbatim; split pieces are each accepted, fit the limit, and together
show the whole text."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from delivery.html import esc, split_html, truncate
from simulator.telegram_html import check_message, utf16_units, visible_text

# Any code point, lone surrogates included (JSON allows them in a token's name), plus text
# dense in the characters HTML cares about.
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
HOSTILE = ['<script>alert(1)</script>', 'A&B <b>x</b> &amp; &lt;', "\u202eevil\u202c", "🚀🌕 🐸", '"q\'',
           "bad\ud800name", "\udfff", "&#0; &#xD800; &nbsp;"]
names = (st.text(ANY_CHAR, max_size=300) | st.sampled_from(HOSTILE)
         | st.text(st.sampled_from(list("<>&\"';#x/bia\u202e🚀 \n\ud800")), max_size=300))


def _shown(name: str) -> str:
    """What a user should see for ``name``: lone surrogates cannot be sent, esc shows U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in name)


@given(name=names)
def test_escaped_text_of_any_kind_is_accepted_and_shown_verbatim(name):
    message = f"<b>{esc(name)}</b> · <code>{esc(name)}</code> ·"
    assert check_message(message, "HTML") is None
    assert visible_text(message) == f"{_shown(name)} · {_shown(name)} ·"


@given(name=names, n=st.integers(1, 50))
def test_truncated_text_is_accepted_and_is_a_prefix(name, n):
    message = f"<i>{truncate(name, n)}</i>."
    assert check_message(message, "HTML") is None
    shown = visible_text(message)[:-1]
    assert len(shown) <= n
    assert _shown(name).startswith(shown.removesuffix("…"))


@given(names_list=st.lists(names, min_size=1, max_size=40), limit=st.sampled_from([64, 257, 1024, 4096]),
       repeat=st.integers(1, 4))
def test_split_pieces_are_each_accepted_fit_and_lose_no_visible_text(names_list, limit, repeat):
    lines = [f"{i}. <b>{esc(n)}</b> <a href=\"https://dexscreener.com/solana/{i}?a=1&amp;b=2\">"
             f"{truncate(n, 30)}</a> <code>{i * 1.5}</code>" for i, n in enumerate(names_list)]
    message = "<blockquote>" + "\n".join(lines * repeat) + "</blockquote> <tg-spoiler>end</tg-spoiler>"
    original = visible_text(message)
    pieces = split_html(message, limit)
    shown = []
    for piece in pieces:
        assert check_message(piece, "HTML") is None, piece
        shown.append(visible_text(piece))
        assert utf16_units(shown[-1]) <= limit
    # in order, nothing lost or repeated: only whitespace at the cuts (or whitespace-only pieces) is dropped
    pos = 0
    for text in shown:
        while not original.startswith(text, pos):
            assert original[pos].isspace(), (pos, original[pos:pos + 20], text[:20])
            pos += 1
        pos += len(text)
    assert original[pos:].strip() == ""
