"""The live dashboards' table: one row per chat with a /dashboard message kept current.

The message is an outbox row (``outbox_key``); once sent, ``message_id`` is learned from the
outbox and edits target it directly, so a restart goes on editing the same message.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel


class Dashboard(SQLModel, table=True):
    __tablename__ = "dashboards"

    chat_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    outbox_key: str = Field(max_length=128)
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    edits: int = 0
    started_at: float
    updated_at: float
