"""Telegram HTML: the one place that escapes, measures, validates and splits message text.

Every dynamic string that goes into a message passes through :func:`esc` (or the
:func:`bold` / :func:`code` / :func:`truncate` helpers, which escape for you)::

    text = f"{bold(token.name)} score {code(round(score, 1))}"
    validate_html(text)                       # raises HtmlError like Telegram would
    for piece in split_html(text):            # each piece valid and <= 4096 UTF-16 units
        await bot.send_message(chat_id, piece)

The rules follow Telegram's HTML parse mode: tags ``b strong i em u ins s strike del
a[href] code pre tg-spoiler span.tg-spoiler blockquote[expandable] tg-emoji[emoji-id]``;
only the named entities ``&lt; &gt; &amp; &quot;`` plus numeric ones. Length limits count
UTF-16 code units of the text *after* entity parsing (tags are free, ``&amp;`` is one).
The fake Bot API server (``simulator.telegram_api``) judges messages with its own, independent
reading of the same rules (``simulator.telegram_html``), so this module is never its own oracle.
"""
from __future__ import annotations

import html as _stdlib_html
import re
from dataclasses import dataclass

__all__ = [
    "HtmlError",
    "MAX_MESSAGE_LEN",
    "MAX_CAPTION_LEN",
    "esc",
    "bold",
    "code",
    "italic",
    "link",
    "truncate",
    "utf16_len",
    "visible_len",
    "validate_html",
    "split_html",
    "split_text",
    "to_plain",
]

MAX_MESSAGE_LEN = 4096
MAX_CAPTION_LEN = 1024
NONE_PLACEHOLDER = "—"

# Tags Telegram accepts, mapped to whether they may carry nested formatting.
_ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
     "tg-spoiler", "span", "blockquote", "tg-emoji"}
)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SURROGATES = re.compile("[\ud800-\udfff]")
_TAG_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR = re.compile(r"""\s*([a-zA-Z][a-zA-Z0-9_-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_ENTITY = re.compile(r"&(?:#(\d{1,8})|#[xX]([0-9a-fA-F]{1,7})|([a-zA-Z]+));")


class HtmlError(ValueError):
    """Text Telegram would refuse with "Bad Request: can't parse entities: <message>"."""


# --------------------------------------------------------------------------- escaping


def _clean(value: object) -> str:
    """``str(value)`` with lone surrogates (unencodable to UTF-8) replaced by U+FFFD."""
    text = value if isinstance(value, str) else str(value)
    return _SURROGATES.sub("\ufffd", text)


def esc(value: object) -> str:
    """Escape any value for Telegram HTML: ``& < > "`` become entities; ``None`` -> ``—``.

        esc("<b>rug & pull</b>")  # '&lt;b&gt;rug &amp; pull&lt;/b&gt;'
    """
    if value is None:
        return NONE_PLACEHOLDER
    text = _clean(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def bold(value: object) -> str:
    """``<b>escaped value</b>``."""
    return f"<b>{esc(value)}</b>"


def italic(value: object) -> str:
    """``<i>escaped value</i>``."""
    return f"<i>{esc(value)}</i>"


def code(value: object) -> str:
    """``<code>escaped value</code>`` (monospace; good for addresses and numbers)."""
    return f"<code>{esc(value)}</code>"


def link(label: object, url: str) -> str:
    """``<a href="url">escaped label</a>``; the URL is escaped as an attribute value."""
    return f'<a href="{esc(url)}">{esc(label)}</a>'


def truncate(value: object, n: int) -> str:
    """Shorten ``value`` to at most ``n`` characters (ending in ``…``), THEN escape it.

    Truncating before escaping means an entity is never cut in half::

        truncate("A&B" * 50, 10)   # 'A&amp;BA&amp;BA&amp;B…'
    """
    if value is None:
        return NONE_PLACEHOLDER
    if n < 1:
        raise ValueError("truncate length must be >= 1")
    text = _clean(value)
    if len(text) > n:
        text = text[: n - 1] + "…"
    return esc(text)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram's limits are counted in."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Token:
    """One atom of parsed HTML: a visible character (``text``) or a tag."""

    kind: str  # "text" | "open" | "close"
    raw: str  # exact source
    text: str = ""  # decoded visible text for "text" tokens
    name: str = ""  # tag name for "open"/"close"


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8", "surrogatepass"))


def _decode_entity(source: str, i: int) -> tuple[str, int] | None:
    """Decode the entity starting at ``source[i] == '&'``; return (char, end) or None."""
    match = _ENTITY.match(source, i)
    if match is None:
        return None
    dec, hexa, name = match.groups()
    if name is not None:
        char = _NAMED_ENTITIES.get(name)
        if char is None:
            return None
        return char, match.end()
    point = int(dec) if dec is not None else int(hexa, 16)
    if point <= 0 or point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
        return None
    return chr(point), match.end()


def _parse_attrs(source: str, body: str, name: str, where: int) -> dict[str, str]:
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        match = _ATTR.match(body, pos)
        if match is None or match.end() == pos:
            raise HtmlError(f'Expected equal sign in declaration of an attribute of the tag "{name}" '
                            f"at byte offset {_byte_offset(source, where)}")
        key = match.group(1).lower()
        value = next((g for g in match.groups()[1:] if g is not None), "")
        attrs[key] = _stdlib_html.unescape(value)
        pos = match.end()
    return attrs


def _tokenize(source: str) -> list[_Token]:
    """Parse ``source`` with Telegram's rules; raise :class:`HtmlError` on what it refuses."""
    tokens: list[_Token] = []
    stack: list[str] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch == "&":
            decoded = _decode_entity(source, i)
            if decoded is None:
                raise HtmlError(f"Unsupported entity or unescaped \"&\" at byte offset {_byte_offset(source, i)}")
            char, end = decoded
            tokens.append(_Token("text", source[i:end], char))
            i = end
            continue
        if ch != "<":
            if 0xD800 <= ord(ch) <= 0xDFFF:
                raise HtmlError(f"Strings must be encoded in UTF-8 (lone surrogate at byte offset "
                                f"{_byte_offset(source, i)})")
            tokens.append(_Token("text", ch, ch))
            i += 1
            continue
        close = source.find(">", i + 1)
        if close == -1:
            raise HtmlError(f"Unclosed start tag at byte offset {_byte_offset(source, i)}")
        inner = source[i + 1 : close]
        raw = source[i : close + 1]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise HtmlError(f'Unexpected end tag at byte offset {_byte_offset(source, i)}')
            if name != stack[-1]:
                raise HtmlError(f'Unmatched end tag at byte offset {_byte_offset(source, i)}, '
                                f'expected "</{stack[-1]}>", found "</{name}>"')
            stack.pop()
            tokens.append(_Token("close", raw, name=name))
            i = close + 1
            continue
        match = _TAG_NAME.match(inner)
        if match is None:
            raise HtmlError(f"Empty or invalid start tag at byte offset {_byte_offset(source, i)}")
        name = match.group(0).lower()
        if name not in _ALLOWED_TAGS:
            raise HtmlError(f'Unsupported start tag "{name}" at byte offset {_byte_offset(source, i)}')
        rest = inner[match.end():]
        if rest and not rest[0].isspace():
            raise HtmlError(f'Unsupported start tag "{inner.split()[0]}" at byte offset {_byte_offset(source, i)}')
        attrs = _parse_attrs(source, rest, name, i)
        _check_tag(source, i, name, attrs, stack)
        stack.append(name)
        tokens.append(_Token("open", raw, name=name))
        i = close + 1
    if stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return tokens


def _check_tag(source: str, i: int, name: str, attrs: dict[str, str], stack: list[str]) -> None:
    where = _byte_offset(source, i)
    parent = stack[-1] if stack else None
    if parent in ("code", "tg-emoji"):
        raise HtmlError(f'Tag "{name}" can\'t be nested inside "{parent}" at byte offset {where}')
    if parent == "pre" and name != "code":
        raise HtmlError(f'Tag "{name}" can\'t be nested inside "pre" at byte offset {where}')
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {where}')
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise HtmlError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {where}')
    if name == "blockquote" and "blockquote" in stack:
        raise HtmlError(f"Blockquote entities can't be nested (byte offset {where})")
    if name == "a" and "a" in stack:
        raise HtmlError(f"Links can't be nested (byte offset {where})")


def validate_html(text: str) -> None:
    """Raise :class:`HtmlError` if Telegram's HTML parse mode would refuse ``text``.

        validate_html("<b>ok</b> &amp; fine")   # None
        validate_html("<b>oops")                # HtmlError: Can't find end tag ...
    """
    _tokenize(text)


def visible_len(text: str) -> int:
    """UTF-16 length of ``text`` after entity parsing (what Telegram's 4096 limit counts).

    Raises :class:`HtmlError` when ``text`` is not valid Telegram HTML.
    """
    return sum(utf16_len(tok.text) for tok in _tokenize(text) if tok.kind == "text")


def to_plain(text: str) -> str:
    """The visible text of ``text``: tags dropped, entities decoded.

    Works on invalid HTML too (best effort), for the "can't parse entities" fallback
    where the message is re-sent without a parse mode rather than dropped.
    """
    try:
        return "".join(tok.text for tok in _tokenize(text) if tok.kind == "text")
    except HtmlError:
        tags = "|".join(sorted(_ALLOWED_TAGS, key=len, reverse=True))
        stripped = re.sub(rf"</?(?:{tags})(?:\s[^<>]*)?>", "", text, flags=re.IGNORECASE)
        return _clean(_stdlib_html.unescape(stripped))


# --------------------------------------------------------------------------- splitting


def _split_tokens(tokens: list[_Token], limit: int) -> list[str]:
    if limit < 2:
        raise ValueError("limit must be >= 2 (a UTF-16 surrogate pair is 2 units)")
    pieces: list[str] = []
    n = len(tokens)
    start = 0
    open_at_start: list[_Token] = []
    while start < n:
        used = 0
        j = start
        last_nl = last_space = None
        while j < n:
            tok = tokens[j]
            if tok.kind == "text":
                width = utf16_len(tok.text)
                if used + width > limit:
                    break
                used += width
                if tok.text == "\n":
                    last_nl = j
                elif tok.text.isspace():
                    last_space = j
            j += 1
        if j >= n:
            cut, resume = n, n
        elif last_nl is not None and last_nl > start:
            cut, resume = last_nl, last_nl + 1
        elif last_space is not None and last_space > start:
            cut, resume = last_space, last_space + 1
        else:
            cut = resume = max(j, start + 1)
        stack = list(open_at_start)
        for tok in tokens[start:cut]:
            if tok.kind == "open":
                stack.append(tok)
            elif tok.kind == "close":
                stack.pop()
        visible = "".join(tok.text for tok in tokens[start:cut])
        if visible.strip():
            pieces.append(
                "".join(tok.raw for tok in open_at_start)
                + "".join(tok.raw for tok in tokens[start:cut])
                + "".join(f"</{tok.name}>" for tok in reversed(stack))
            )
        open_at_start = stack
        start = resume
    return pieces


def split_html(text: str, limit: int = MAX_MESSAGE_LEN) -> list[str]:
    """Split valid Telegram HTML into pieces of at most ``limit`` visible UTF-16 units.

    Cuts at a line break when one is in reach, else at a space, else between two
    characters; never inside a tag or an entity. Tags open at a cut are closed at the
    end of one piece and re-opened (with their attributes) at the start of the next,
    so every piece is valid on its own::

        split_html("<b>" + "line\\n" * 2000 + "</b>")   # -> 3 pieces, each starting "<b>"

    Raises :class:`HtmlError` when ``text`` is invalid; whitespace-only pieces are dropped.
    """
    tokens = _tokenize(text)
    if sum(utf16_len(tok.text) for tok in tokens) <= limit:
        return [text]
    return _split_tokens(tokens, limit)


def split_text(text: str, limit: int = MAX_MESSAGE_LEN) -> list[str]:
    """Split plain text (sent without a parse mode) the same way :func:`split_html` does."""
    text = _clean(text)
    if utf16_len(text) <= limit:
        return [text]
    return _split_tokens([_Token("text", ch, ch) for ch in text], limit)
