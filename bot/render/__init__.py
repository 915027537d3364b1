"""Rendering Telegram messages: HTML escaping, validation and splitting (see ``bot.render.html``)."""
from bot.render.html import (
    HtmlError,
    bold,
    code,
    esc,
    split_html,
    split_text,
    to_plain,
    truncate,
    utf16_len,
    validate_html,
    visible_len,
)

__all__ = [
    "HtmlError", "bold", "code", "esc", "split_html", "split_text", "to_plain", "truncate",
    "utf16_len", "validate_html", "visible_len",
]
