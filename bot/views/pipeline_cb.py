"""Callback data of the pipeline views: /stuck pages and "open /token" buttons.

    signer.pack(StuckCb(page=2))     # "sk:2:<sig>"
    signer.pack(TokenCb(token_id=17))  # "tk:17:<sig>" — the id, so any mint fits in 64 bytes
"""
from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class StuckCb(CallbackData, prefix="sk"):
    """A /stuck page (0-based); pressing it edits the message in place."""

    page: int = 0


class TokenCb(CallbackData, prefix="tk"):
    """Open the /token view of one token (by its database id)."""

    token_id: int
