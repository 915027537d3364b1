"""The fake Bot API server's HTML judge (simulator.telegram_html), against Telegram's documented
rules, and its answers through the real aiogram client: Telegram's error shapes and limits."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile

from simulator import telegram_html
from simulator.telegram_html import TelegramHtmlError, TelegramRefusal, check_message, parse_html, utf16_units
from tests.bot.telegram_harness import telegram_harness

EVERY_FORM = (
    '<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>i</ins><s>s</s><strike>k</strike>'
    '<del>d</del><a href="https://t.me/x?a=1&amp;b=2">l</a><code>c</code>'
    '<pre><code class="language-python">print(1)</code></pre><pre>p</pre><tg-spoiler>s</tg-spoiler>'
    '<span class="tg-spoiler">s</span><blockquote expandable>q</blockquote><blockquote>r</blockquote>'
    '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &lt;&gt;&amp;&quot; &#128640; &#x1F680;'
)


def test_the_oracle_imports_nothing_of_the_code_it_judges():
    for name in ("telegram_html.py", "telegram_api.py"):
        tree = ast.parse(Path(telegram_html.__file__).with_name(name).read_text())
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {m for m in imported if m.split(".")[0] in ("delivery", "bot", "tokens", "monitoring")}, name


def test_every_documented_form_is_accepted_and_shown_as_its_text():
    parsed = parse_html(EVERY_FORM)
    assert parsed.text == 'bsieuiskdlcprint(1)pssqr👍 <>&" 🚀 🚀'
    assert parsed.tags == ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "code",
                           "pre", "tg-spoiler", "span", "blockquote", "blockquote", "tg-emoji")


@pytest.mark.parametrize("source, shown", [
    ("<b>bold <i>and italic</i></b>", "bold and italic"),
    ("<a href='https://x.io'><b>bold link</b></a>", "bold link"),
    ("<b><code>bold code</code></b>", "bold code"),
    ("<blockquote>quote <a href=\"https://x.io\">link</a> <code>c</code></blockquote>", "quote link c"),
    ("<B>upper</B>", "upper"),
    ("multi\nline <b>\ntext\n</b>", "multi\nline \ntext\n"),
    ("&#60;&#x3E;", "<>"),
])
def test_nesting_and_entities_telegram_allows(source, shown):
    assert parse_html(source).text == shown


@pytest.mark.parametrize("source, error", [
    ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<blink>x</blink>", 'Unsupported start tag "blink" at byte offset 0'),
    ("🚀 <br>", 'Unsupported start tag "br" at byte offset 5'),  # offsets count UTF-8 bytes
    ("</b>", "Unexpected end tag at byte offset 0"),
    ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
    ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ('<span class="spoiler">x</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ("<a>x</a>", 'Tag "a" must have a non-empty attribute "href" at byte offset 0'),
    ('<a href="x" title="t">x</a>', 'Unsupported attribute "title" in the tag "a" at byte offset 0'),
    ('<b class="x">x</b>', 'Unsupported attribute "class" in the tag "b" at byte offset 0'),
    ("<code class='language-py'>x</code>", 'A "code" tag with a language must be directly inside "pre"'),
    ("<pre><code class='python'>x</code></pre>", 'Tag "code" may only have class "language-..."'),
    ("<tg-emoji>x</tg-emoji>", 'Tag "tg-emoji" must have a numeric attribute "emoji-id"'),
    ("<code><b>x</b></code>", 'Tag "b" can\'t be nested inside "code" at byte offset 6'),
    ("<pre><i>x</i></pre>", 'Tag "i" can\'t be nested inside "pre" at byte offset 5'),
    ("<a href='u'><code>x</code></a>", 'Tag "code" can\'t be nested inside "a"'),
    ("<a href='u'><a href='v'>x</a></a>", 'Tag "a" can\'t be nested inside "a"'),
    ("<blockquote><blockquote>x</blockquote></blockquote>", "Blockquote can't be nested"),
    ("<br/>", 'Unsupported self-closing tag "br"'),
    ("<!-- note -->", 'Unsupported start tag "!--"'),
    ("rug & pull", 'Unescaped "&" at byte offset 4'),
    ("&amp", 'Unescaped "&" at byte offset 0'),
    ("&nbsp;", 'Unsupported HTML entity "&nbsp;"'),
    ("&#xD800;", "Invalid character entity &#xD800;"),
    ("a < b", 'Unsupported start tag or unescaped "<" at byte offset 2'),
    ("a > b", 'Unescaped ">" at byte offset 2'),
    ("<b x", 'Unsupported start tag or unescaped "<" at byte offset 0'),
    ("<b>x</b", 'Unsupported start tag or unescaped "<" at byte offset 4'),
    ("<a href='a&b'>x</a>", 'Unsupported entity or unescaped "&" in an attribute of the tag "a"'),
])
def test_what_telegram_refuses(source, error):
    with pytest.raises(TelegramHtmlError) as refused:
        parse_html(source)
    assert error in str(refused.value)


@pytest.mark.parametrize("text, parse_mode, caption, answer", [
    ("&amp;" * 4096, "HTML", False, None),  # 4096 after parsing
    ("&amp;" * 4097, "HTML", False, "Bad Request: message is too long"),
    ("🚀" * 2048, None, False, None),  # 4096 UTF-16 units
    ("🚀" * 2048 + "x", None, False, "Bad Request: message is too long"),
    ("<b>" + "x" * 1024 + "</b>", "HTML", True, None),
    ("🚀" * 512 + "x", "HTML", True, "Bad Request: message caption is too long"),
    ("", "HTML", False, "Bad Request: message text is empty"),
    ("<b> \n </b>", "HTML", False, "Bad Request: message text is empty"),
    ("", "HTML", True, None),  # a photo without a caption
    ("<b>x", "HTML", False, "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""),
    ("<b>x", None, False, None),  # without a parse mode it is plain text
    ("x", "html", False, None),
    ("x", "BBCode", False, 'Bad Request: unsupported parse_mode "BBCode"'),
    ("a\ud800b", None, False, "Bad Request: strings must be encoded in UTF-8"),
])
def test_limits_count_utf16_units_after_parsing(text, parse_mode, caption, answer):
    expected = None if answer is None else TelegramRefusal(400, answer)
    assert check_message(text, parse_mode, caption=caption) == expected


def test_utf16_units():
    assert [utf16_units(s) for s in ("", "a", "é", "🚀", "👍🏽", "\u202e")] == [0, 1, 1, 2, 4, 1]


async def test_the_server_answers_with_telegrams_error_shapes():
    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(42)
        cases = [
            ("<span>x</span>", "Bad Request: can't parse entities: Tag \"span\" must have class \"tg-spoiler\" "
                               "at byte offset 0"),
            ("<b>unclosed", "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""),
            ("x" * 4097, "Bad Request: message is too long"),
            ("<i> </i>", "Bad Request: message text is empty"),
        ]
        for text, description in cases:
            with pytest.raises(TelegramBadRequest) as refused:
                await bot.send_message(42, text)
            assert refused.value.message == description
        with pytest.raises(TelegramBadRequest, match="message caption is too long"):
            await bot.send_photo(42, BufferedInputFile(b"\x89PNG", "c.png"), caption="&lt;" * 1025)
        assert fake.sent(42) == []
        assert [(r.method, r.status, r.chat_id, r.injected) for r in fake.refusals] == (
            [("sendmessage", 400, "42", False)] * 4 + [("sendphoto", 400, "42", False)])
        assert [r.text for r in fake.refusals][:2] == ["<span>x</span>", "<b>unclosed"]


async def test_lone_surrogates_never_reach_telegram():
    """aiogram encodes every request in UTF-8, so a lone surrogate fails in the client; the
    oracle refuses one anyway, as Telegram refuses text that is not UTF-8."""
    async with telegram_harness(enforce_limits=False) as (fake, bot):
        fake.add_chat(42)
        with pytest.raises(UnicodeEncodeError):
            await bot.send_message(42, "bad\ud800name")
        assert fake.stats.requests == 0 and fake.sent(42) == []
