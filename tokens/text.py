"""Untrusted text from the market, cleaned once, at the edge.

Every string the market hands us (names, symbols, dex ids, labels, addresses, websocket
error messages) passes through :func:`clean_text` before anything else sees it, so the
database, the logs and every screen downstream only ever meet text that:

- encodes as UTF-8: a lone surrogate (``"bad\\ud800name"``, legal in JSON, refused by
  SQLite, PostgreSQL and every UTF-8 writer) becomes U+FFFD; a proper surrogate pair given
  as two code points is joined into the one character it stands for;
- has no control characters: tab, line and paragraph breaks become one space (a name
  cannot fake extra lines), every other C0/C1 control (NUL included) is dropped;
- has no bidirectional controls (embeddings, overrides, isolates, LRM/RLM/ALM), so a name
  cannot reorder the rest of a screen; right-to-left *letters* are kept;
- is at most ``max_chars`` characters, without leading or trailing whitespace.

    clean_text("bad\\ud800name")           # 'bad\\ufffdname'
    clean_text("Safe\\u202egnp.exe")       # 'Safegnp.exe'
    clean_text("line\\nbreak")             # 'line break'
    clean_text("   ")                      # None: nothing left
    clean_text(42)                         # None: not text

It is idempotent (``clean_text(clean_text(x)) == clean_text(x)``), so cleaning again on a
later hop is harmless. Text is stored as given otherwise and escaped at render time.
"""
from __future__ import annotations

import re

MAX_TEXT_CHARS = 512
REPLACEMENT_CHAR = "\ufffd"
# LRE RLE PDF LRO RLO, LRI RLI FSI PDI, LRM RLM, ALM
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_BREAKS = re.compile("[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]")
_DROPPED = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
_PRECUT_FACTOR = 4  # a megabyte-long name is cut before it is cleaned (cleaning only shrinks text)


def clean_text(value: object, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """``value`` as safe display text (see the module docstring); ``None`` for non-strings and
    for text with nothing left after cleaning."""
    if not isinstance(value, str):
        return None
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars!r}")
    text = value[: max_chars * _PRECUT_FACTOR]
    if text.isascii() and text.isprintable():  # the common case: nothing to replace or drop
        return text.strip()[:max_chars].strip() or None
    # Through UTF-16 and back: a surrogate pair becomes its character, a lone surrogate U+FFFD.
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    text = _DROPPED.sub("", _BREAKS.sub(" ", text))
    text = text.strip()[:max_chars].strip()
    return text or None
