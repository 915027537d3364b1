"""Token names and symbols, ordinary and hostile, as found on real chains.

Real token metadata is attacker-controlled: HTML that breaks Telegram's HTML
parse mode, emoji, right-to-left overrides that flip text, zero-width characters
that make two names look equal, names far longer than any UI expects, and lone
surrogates (``"bad\\ud800name"``): legal as a JSON escape, refused by every UTF-8 writer.
``market_json`` writes JSON as the market sends it, lone surrogates as ``\\uXXXX`` escapes.
The market uses ``NameGenerator`` so every consumer meets these regularly::

    gen = NameGenerator(random.Random(42), hostile_share=0.25)
    name, symbol = gen.next()

Tests elsewhere can use the fixed catalogue directly::

    for name in hostile_names():
        assert esc(name)  # whatever the consumer must survive
"""
from __future__ import annotations

import json
import random
import re
from typing import Any

RLO = "\u202e"  # right-to-left override
PDF = "\u202c"  # pop directional formatting
ZWSP = "\u200b"  # zero-width space
ZWJ = "\u200d"  # zero-width joiner
LONE_SURROGATE = "\ud800"  # sent as the JSON escape \ud800; not encodable as UTF-8
_SURROGATES = re.compile("[\ud800-\udfff]")


def market_json(data: Any, **kwargs: Any) -> str:
    """JSON text with non-ASCII kept as is, except surrogates, which only a ``\\uXXXX`` escape can
    carry (a lone surrogate cannot be encoded as UTF-8; in JSON it is legal):

        market_json({"name": "bad\\ud800name"})   # '{"name": "bad\\\\ud800name"}'
    """
    text = json.dumps(data, ensure_ascii=False, **kwargs)
    return _SURROGATES.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

_ADJECTIVES = (
    "Based", "Tiny", "Giga", "Moon", "Frog", "Cosmic", "Sleepy", "Angry", "Golden", "Turbo",
    "Baby", "Mega", "Lazy", "Cyber", "Wild", "Super", "Happy", "Dark", "Hyper", "Retro",
)
_NOUNS = (
    "Pepe", "Cat", "Doge", "Bonk", "Wizard", "Rocket", "Hamster", "Penguin", "Whale", "Goblin",
    "Shiba", "Banana", "Otter", "Llama", "Dragon", "Toad", "Panda", "Chad", "Bear", "Duck",
)
_EMOJI = ("🚀", "🐸", "🔥", "💎", "🐶", "🌕", "👑", "🦄", "🍌", "🤡")

_HTML = (
    "<b>{w}</b>",
    "<script>alert('{w}')</script>",
    "{w} &amp; Friends",
    "{w} <i>unclosed",
    '<a href="https://evil.example">{w}</a>',
    "{w} &lt;3 &#x1F680;",
    "{w} < > & \" '",
)


def hostile_names() -> list[str]:
    """A fixed catalogue with one example of every hostile kind (stable across runs)."""
    return [
        "<b>Bold</b> Token",
        "<script>alert(1)</script>",
        "Fish &amp; Chips",
        "Broken <i>tag",
        "Less < than & greater > \"quote\" 'apos'",
        "Rocket 🚀🚀🚀 Moon 🌕",
        "👨\u200d👩\u200d👧 family",
        f"Safe{RLO}gnp.exe{PDF}",
        f"Pe{ZWSP}pe",
        f"Zero{ZWJ}Width",
        "مرحبا Token",
        "L" * 200,
        ("Long 🐸 <b>name</b> & " * 12)[:200],
        "   padded   ",
        "",
        "line\nbreak",
        "tab\tand\\backslash",
        "%s %d {0} {name}",
        f"bad{LONE_SURROGATE}name",
    ]


class NameGenerator:
    """Seeded names and symbols; ``hostile_share`` of them are hostile.

    Example::

        gen = NameGenerator(random.Random(1), hostile_share=1.0)
        name, symbol = gen.next()   # always hostile
    """

    def __init__(self, rng: random.Random, hostile_share: float = 0.2) -> None:
        if not 0.0 <= hostile_share <= 1.0:
            raise ValueError("hostile_share must be within [0, 1]")
        self._rng = rng
        self.hostile_share = hostile_share

    def next(self) -> tuple[str, str]:
        """Return ``(name, symbol)``."""
        rng = self._rng
        adjective = rng.choice(_ADJECTIVES)
        noun = rng.choice(_NOUNS)
        plain_name = f"{adjective} {noun}"
        plain_symbol = (adjective[:2] + noun[:3]).upper()
        if rng.random() >= self.hostile_share:
            return plain_name, plain_symbol
        kind = rng.randrange(7)
        if kind == 0:
            name = rng.choice(_HTML).format(w=plain_name)
            symbol = f"<b>{plain_symbol}</b>" if rng.random() < 0.5 else plain_symbol
        elif kind == 1:
            emoji = rng.choice(_EMOJI)
            name = f"{emoji} {plain_name} {emoji * rng.randint(1, 4)}"
            symbol = f"{plain_symbol}{emoji}"
        elif kind == 2:
            name = f"{plain_name} {RLO}{noun[::-1]}{PDF}"
            symbol = f"{RLO}{plain_symbol}"
        elif kind == 3:
            name = ZWSP.join(plain_name)
            symbol = f"{plain_symbol[:2]}{ZWJ}{plain_symbol[2:]}"
        elif kind == 4:
            unit = f"{plain_name} {rng.choice(_EMOJI)} <b>&amp;</b> "
            name = (unit * (200 // len(unit) + 1))[:200]
            symbol = plain_symbol * 4
        elif kind == 5:
            name = rng.choice(hostile_names())
            symbol = rng.choice(("", " ", "$" + plain_symbol, plain_symbol.lower()))
        else:
            name = f"{plain_name} & <{noun}> \"{adjective}\""
            symbol = f"{plain_symbol}&amp;"
        return name, symbol
