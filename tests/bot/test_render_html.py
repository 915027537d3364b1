"""delivery.html: escaping, Telegram's HTML rules, lengths and safe splitting."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.html import (
    HtmlError,
    bold,
    code,
    esc,
    link,
    split_html,
    split_text,
    to_plain,
    truncate,
    utf16_len,
    validate_html,
    visible_len,
)

HOSTILE = [
    "<script>alert(1)</script>",
    "A&B <b>not bold</b> &amp; &lt;",
    "\u202eevil\u202c RTL",
    "🚀🌕 moon 🐸",
    'quote " and \' apostrophe',
    "x" * 200,
    "\ud800 lone surrogate",
    "",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_escaped_hostile_names_render_valid_html_and_show_verbatim(name):
    message = f"<b>{esc(name)}</b> score {code(42.5)}"
    validate_html(message)
    shown = to_plain(message)
    assert shown.startswith(name.replace("\ud800", "\ufffd"))
    assert shown.endswith("score 42.5")


def test_esc_none_and_numbers():
    assert esc(None) == "—"
    assert esc(3) == "3"
    assert bold("<x>") == "<b>&lt;x&gt;</b>"
    assert link("site", "https://x.io/?a=1&b=2") == '<a href="https://x.io/?a=1&amp;b=2">site</a>'


def test_truncate_never_cuts_an_escape():
    out = truncate("A&B" * 50, 10)
    assert out == "A&amp;BA&amp;BA&amp;B…"
    assert to_plain(out) == "A&BA&BA&B…"
    assert truncate("short", 10) == "short"
    assert truncate(None, 5) == "—"


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("<b>open", "Can't find end tag"),
        ("<blink>x</blink>", 'Unsupported start tag "blink"'),
        ("</b>", "Unexpected end tag"),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("rug & pull", "unescaped"),
        ("&nbsp;", "Unsupported entity"),
        ("<span>x</span>", "tg-spoiler"),
        ("<code><b>x</b></code>", "can't be nested"),
        ("<pre><i>x</i></pre>", "can't be nested"),
        ("<b x", "Unclosed start tag"),
        ("a < b", "Unclosed start tag"),
        ("1 < 2 > 0", "Empty or invalid start tag"),
    ],
)
def test_validate_refuses_what_telegram_refuses(bad, fragment):
    with pytest.raises(HtmlError, match=fragment):
        validate_html(bad)


def test_validate_accepts_every_supported_form():
    text = (
        '<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>i</ins><s>s</s><strike>s</strike>'
        '<del>d</del><a href="https://t.me/x?a=1&amp;b=2">l</a><code>c</code>'
        '<pre><code class="language-python">print(1)</code></pre><tg-spoiler>s</tg-spoiler>'
        '<span class="tg-spoiler">s</span><blockquote expandable>q</blockquote>'
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &lt;&gt;&amp;&quot; &#128640; &#x1F680;'
    )
    assert validate_html(text) is None  # raises HtmlError on anything Telegram refuses
    assert to_plain(text) == 'bsieuissdlcprint(1)ssq👍 <>&" 🚀 🚀'
    assert visible_len(text) == utf16_len(to_plain(text)) == 35  # the emoji count 2 UTF-16 units each
    assert split_html(text) == [text]


def test_visible_length_counts_utf16_after_parsing():
    assert utf16_len("🚀") == 2
    assert visible_len("<b>&amp;</b>") == 1
    assert visible_len("🚀 &#128640;") == 5
    assert visible_len("<a href=\"https://very.long/url\">x</a>") == 1


def test_split_keeps_lines_and_reopens_tags():
    text = "<b>" + "line of text\n" * 1000 + "</b>"
    pieces = split_html(text)
    assert len(pieces) == 4
    for piece in pieces:
        validate_html(piece)
        assert visible_len(piece) <= 4096
        assert piece.startswith("<b>") and piece.endswith("</b>")
        assert "line of tex\n" not in to_plain(piece)  # whole lines only
    assert "".join(to_plain(p) + "\n" for p in pieces).count("line of text") == 1000


def test_split_single_huge_line_inside_pre_with_language():
    text = '<pre><code class="language-json">' + "&quot;x&quot;" * 3000 + "</code></pre>"
    pieces = split_html(text, 1000)
    assert len(pieces) == 9
    for piece in pieces:
        validate_html(piece)
        assert visible_len(piece) <= 1000
        assert piece.startswith('<pre><code class="language-json">')
    assert "".join(to_plain(p) for p in pieces) == '"x"' * 3000


def test_split_never_cuts_an_emoji_in_half():
    pieces = split_html("🚀" * 3000, 4096)
    assert [visible_len(p) for p in pieces] == [4096, 1904]


def test_split_refuses_invalid_html_and_plain_split_works():
    with pytest.raises(HtmlError):
        split_html("<b>" + "x" * 5000)
    pieces = split_text("word " * 2000, 4096)
    assert all(utf16_len(p) <= 4096 for p in pieces)
    assert " ".join(pieces).split() == ["word"] * 2000


def test_to_plain_is_best_effort_on_invalid_html():
    assert to_plain("<b>rug & pull</b> <3") == "rug & pull <3"


names = st.text(min_size=0, max_size=300) | st.sampled_from(HOSTILE) | st.text(
    alphabet=st.sampled_from(list("<>&\"';/bia\u202e\u200f🚀 \n")), max_size=400)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names)
def test_property_any_name_renders_valid_html(name):
    message = f"<b>{esc(name)}</b> · <code>{esc(name[:20])}</code>\n<i>{truncate(name, 40)}</i>"
    validate_html(message)
    clean = name.encode("utf-16", "surrogatepass").decode("utf-16", "replace") if name else name
    assert to_plain(message).startswith(clean.replace("\ud800", "\ufffd") + " · ")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names_list=st.lists(names, min_size=1, max_size=60), limit=st.sampled_from([64, 257, 4096]))
def test_property_split_pieces_are_valid_and_fit(names_list, limit):
    lines = [f"{i}. <b>{esc(n)}</b> <a href=\"https://dexscreener.com/solana/{i}\">{truncate(n, 30)}</a>"
             for i, n in enumerate(names_list)]
    message = "<blockquote>" + "\n".join(lines) * 3 + "</blockquote>"
    pieces = split_html(message, limit)
    assert pieces
    for piece in pieces:
        validate_html(piece)
        assert visible_len(piece) <= limit
    original = to_plain(message)
    joined = "".join(to_plain(p) for p in pieces)
    # only the separators we cut at (newlines/spaces) may be missing
    assert "".join(original.split()) == "".join(joined.split())
