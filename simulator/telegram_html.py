"""Telegram's HTML parse mode, as the fake Bot API server judges it: an independent oracle.

Written from the Bot API documentation ("Formatting options", HTML style, and the
sendMessage / sendPhoto limits) on top of the standard library's ``html.parser``. It
deliberately imports nothing from ``delivery/`` or ``bot/``: the code that produces our
messages must never be the code that judges them::

    parse_html('<b>rug &amp; pull</b>').text          # 'rug & pull'
    parse_html('<span>x</span>')                      # TelegramHtmlError: Tag "span" must have ...
    check_message('<b>hi</b>', 'HTML')                # None, or TelegramRefusal(400, "Bad Request: ...")

The documented rules enforced here:

- tags: ``b strong i em u ins s strike del a code pre tg-spoiler span blockquote tg-emoji``;
  ``a`` takes ``href`` (required, nothing else), ``span`` needs ``class="tg-spoiler"``,
  ``code`` may carry ``class="language-..."`` only directly inside ``pre``, ``blockquote``
  may carry ``expandable``, ``tg-emoji`` needs a numeric ``emoji-id``; no other attributes;
- every tag closed, properly nested; ``pre``/``code``/``tg-emoji`` contain no other tag
  (except ``pre > code``), links and code don't contain each other, blockquotes don't nest;
- entities: only ``&lt; &gt; &amp; &quot;`` and numeric ones (``&#128640;``, ``&#x1F680;``);
  every ``<``, ``>`` and ``&`` that is not part of a tag or an entity must be escaped;
- limits count the text AFTER entity parsing in UTF-16 code units: 4096 for a message,
  1024 for a caption; a message whose text is empty after parsing is refused.

Refusals carry Telegram's wording: 400 ``Bad Request: can't parse entities: ...``,
``Bad Request: message is too long``, ``Bad Request: message caption is too long``,
``Bad Request: message text is empty``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = [
    "MESSAGE_LIMIT",
    "CAPTION_LIMIT",
    "TelegramHtmlError",
    "TelegramRefusal",
    "ParsedHtml",
    "parse_html",
    "visible_text",
    "utf16_units",
    "check_message",
]

MESSAGE_LIMIT = 4096  # UTF-16 code units of a message's text after entity parsing
CAPTION_LIMIT = 1024  # the same for a media caption

FORMATTING = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "span"})
# "All other entities can't contain each other" (links, code, pre, custom emoji).
EXCLUSIVE = frozenset({"a", "code", "pre", "tg-emoji"})
TAGS = FORMATTING | EXCLUSIVE | {"blockquote"}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
PARSE_MODES = ("HTML", "MARKDOWN", "MARKDOWNV2")

_END_TAG_AT = re.compile(r"</[a-zA-Z][a-zA-Z0-9-]*\s*>")
_ENTITY_AT = re.compile(r"&(?:#([0-9]+)|#[xX]([0-9a-fA-F]+)|([a-zA-Z][a-zA-Z0-9]*));")


class TelegramHtmlError(ValueError):
    """What follows "Bad Request: can't parse entities: " in Telegram's answer."""


@dataclass(frozen=True)
class TelegramRefusal:
    """An error answer Telegram would give: ``status`` and its ``description``."""

    status: int
    description: str


@dataclass(frozen=True)
class ParsedHtml:
    """The message as a Telegram client shows it: ``text`` (tags gone, entities decoded)
    and the tags that were used, in order of opening."""

    text: str
    tags: tuple[str, ...]


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units (what Telegram's limits count): an emoji outside the BMP is 2."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


class _TelegramHtmlParser(HTMLParser):
    """``html.parser`` events checked against Telegram's rules; raises on the first violation."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.stack: list[str] = []
        self.opened: list[str] = []
        self.out: list[str] = []

    # ------------------------------------------------------------------ positions

    def _index(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def _where(self, index: int | None = None) -> str:
        index = self._index() if index is None else index
        return f"at byte offset {len(self.source[:index].encode('utf-8', 'surrogatepass'))}"

    def _fail(self, message: str) -> None:
        raise TelegramHtmlError(message)

    # ------------------------------------------------------------------ text

    def handle_data(self, data: str) -> None:
        start = self._index()
        for offset, ch in enumerate(data):
            if ch == "<":
                self._fail(f"Unsupported start tag or unescaped \"<\" {self._where(start + offset)}")
            if ch == ">":
                self._fail(f"Unescaped \">\" {self._where(start + offset)}: use &gt;")
            if ch == "&":
                self._fail(f"Unescaped \"&\" {self._where(start + offset)}: use &amp;")
            if 0xD800 <= ord(ch) <= 0xDFFF:
                self._fail(f"Strings must be encoded in UTF-8 {self._where(start + offset)}")
        self.out.append(data)

    def _entity(self) -> str:
        index = self._index()
        match = _ENTITY_AT.match(self.source, index)
        if match is None:
            self._fail(f"Character entity without \";\" or unescaped \"&\" {self._where(index)}")
        assert match is not None
        dec, hexa, name = match.groups()
        if name is not None:
            if name not in NAMED_ENTITIES:
                self._fail(f"Unsupported HTML entity \"&{name};\" {self._where(index)}: only &lt; &gt; "
                           "&amp; &quot; and numeric entities are supported")
            return NAMED_ENTITIES[name]
        point = int(dec) if dec is not None else int(hexa, 16)
        if point == 0 or point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
            self._fail(f"Invalid character entity {match.group(0)} {self._where(index)}")
        return chr(point)

    def handle_entityref(self, name: str) -> None:
        self.out.append(self._entity())

    def handle_charref(self, name: str) -> None:
        self.out.append(self._entity())

    # ------------------------------------------------------------------ tags

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        where = self._where()
        raw = self.get_starttag_text() or ""
        if tag not in TAGS:
            self._fail(f'Unsupported start tag "{tag}" {where}')
        if "<" in raw[1:]:
            self._fail(f'Unescaped "<" inside the start tag "{tag}" {where}')
        for amp in re.finditer("&", raw):
            match = _ENTITY_AT.match(raw, amp.start())
            if match is None or (match.group(3) is not None and match.group(3) not in NAMED_ENTITIES):
                self._fail(f'Unsupported entity or unescaped "&" in an attribute of the tag "{tag}" {where}')
        values: dict[str, str | None] = {}
        for key, value in attrs:
            if key in values:
                self._fail(f'Duplicate attribute "{key}" in the tag "{tag}" {where}')
            values[key] = value
        self._check_attributes(tag, values, where)
        self._check_nesting(tag, values, where)
        self.stack.append(tag)
        self.opened.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f'Unsupported self-closing tag "{tag}" {self._where()}')

    def handle_endtag(self, tag: str) -> None:
        where = self._where()
        if not _END_TAG_AT.match(self.source, self._index()):
            self._fail(f"Invalid end tag {where}")
        if not self.stack:
            self._fail(f"Unexpected end tag {where}")
        if tag != self.stack[-1]:
            self._fail(f'Unmatched end tag {where}, expected "</{self.stack[-1]}>", found "</{tag}>"')
        self.stack.pop()

    def handle_comment(self, data: str) -> None:
        self._fail(f"Unsupported start tag \"!--\" {self._where()}")

    def handle_decl(self, decl: str) -> None:
        self._fail(f"Unsupported start tag \"!\" {self._where()}")

    def unknown_decl(self, data: str) -> None:
        self._fail(f"Unsupported start tag \"![\" {self._where()}")

    def handle_pi(self, data: str) -> None:
        self._fail(f"Unsupported start tag \"?\" {self._where()}")

    # ------------------------------------------------------------------ rules

    def _check_attributes(self, tag: str, attrs: dict[str, str | None], where: str) -> None:
        allowed = {"a": {"href"}, "span": {"class"}, "code": {"class"}, "blockquote": {"expandable"},
                   "tg-emoji": {"emoji-id"}}.get(tag, set())
        for key in attrs:
            if key not in allowed:
                self._fail(f'Unsupported attribute "{key}" in the tag "{tag}" {where}')
        if tag == "a" and not (attrs.get("href") or "").strip():
            self._fail(f'Tag "a" must have a non-empty attribute "href" {where}')
        if tag == "span" and attrs.get("class") != "tg-spoiler":
            self._fail(f'Tag "span" must have class "tg-spoiler" {where}')
        if tag == "tg-emoji" and not (attrs.get("emoji-id") or "").isdigit():
            self._fail(f'Tag "tg-emoji" must have a numeric attribute "emoji-id" {where}')
        if tag == "code" and "class" in attrs:
            language = attrs["class"] or ""
            if not (language.startswith("language-") and len(language) > len("language-")):
                self._fail(f'Tag "code" may only have class "language-..." {where}')
            if not self.stack or self.stack[-1] != "pre":
                self._fail(f'A "code" tag with a language must be directly inside "pre" {where}')

    def _check_nesting(self, tag: str, attrs: dict[str, str | None], where: str) -> None:
        parent = self.stack[-1] if self.stack else None
        if parent in ("code", "tg-emoji"):
            self._fail(f'Tag "{tag}" can\'t be nested inside "{parent}" {where}')
        if parent == "pre" and tag != "code":
            self._fail(f'Tag "{tag}" can\'t be nested inside "pre" {where}')
        if tag == "blockquote" and any(t in self.stack for t in ("blockquote", *EXCLUSIVE)):
            self._fail(f"Blockquote can't be nested inside another entity of this kind {where}")
        if tag in EXCLUSIVE and not (tag == "code" and parent == "pre"):
            clash = next((t for t in self.stack if t in EXCLUSIVE), None)
            if clash is not None:
                self._fail(f'Tag "{tag}" can\'t be nested inside "{clash}" {where}')

    def finish(self) -> ParsedHtml:
        self.feed(self.source)
        self.close()
        if self.stack:
            self._fail(f'Can\'t find end tag corresponding to start tag "{self.stack[-1]}"')
        return ParsedHtml("".join(self.out), tuple(self.opened))


def parse_html(source: str) -> ParsedHtml:
    """Parse ``source`` as Telegram's HTML parse mode does; raise :class:`TelegramHtmlError`
    (the part after "can't parse entities: ") on the first thing Telegram refuses."""
    return _TelegramHtmlParser(source).finish()


def visible_text(source: str, parse_mode: str | None = "HTML") -> str:
    """What a Telegram client shows for ``source`` sent with ``parse_mode`` (raises if refused)."""
    if parse_mode is not None and parse_mode.upper() == "HTML":
        return parse_html(source).text
    return source


def check_message(text: str | None, parse_mode: str | None, *, caption: bool = False) -> TelegramRefusal | None:
    """Telegram's answer to a message text (or, with ``caption=True``, a media caption):
    ``None`` when it is accepted, else the :class:`TelegramRefusal` it would answer."""
    if parse_mode is not None and parse_mode.upper() not in PARSE_MODES:
        return TelegramRefusal(400, f"Bad Request: unsupported parse_mode \"{parse_mode}\"")
    if not text:
        return None if caption else TelegramRefusal(400, "Bad Request: message text is empty")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        return TelegramRefusal(400, "Bad Request: strings must be encoded in UTF-8")
    try:
        shown = visible_text(text, parse_mode)
    except TelegramHtmlError as exc:
        return TelegramRefusal(400, f"Bad Request: can't parse entities: {exc}")
    if not caption and not shown.strip():
        return TelegramRefusal(400, "Bad Request: message text is empty")
    if utf16_units(shown) > (CAPTION_LIMIT if caption else MESSAGE_LIMIT):
        return TelegramRefusal(400, "Bad Request: message caption is too long" if caption
                               else "Bad Request: message is too long")
    return None
