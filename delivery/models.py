"""The outbox table: every outgoing Telegram message is a row before it is sent.

``idempotency_key`` is unique, so enqueueing the same message twice is a no-op.
``method`` is ``send``, ``edit`` or ``photo``. Edits name their target either by
``target_key`` (the idempotency key of an earlier outbox message) or by
``chat_id`` + ``message_id``. ``priority``: 0 critical, 1 warning, 2 info.

A sender claims a row before sending it: ``lease_owner`` names the sender and
``lease_until`` (epoch seconds) ends the claim; a lease that ran out (its sender died)
may be claimed again. ``is_reply`` marks a command reply (``Outbox.enqueue_reply``).
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

PENDING = "pending"
SENT = "sent"
DEAD = "dead"
SUPERSEDED = "superseded"

CRITICAL = 0
REPLY = CRITICAL  # command replies: someone is waiting for them
WARNING = 1
INFO = 2


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_prio_id", "status", "priority", "id"),
        Index("ix_outbox_status_sent_at", "status", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    method: str = Field(default="send", max_length=8)
    priority: int = INFO
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    reply_markup: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    photo: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    target_key: str | None = Field(default=None, max_length=128)
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    status: str = Field(default=PENDING, max_length=12)
    attempts: int = 0
    created_at: float
    next_attempt_at: float
    sent_at: float | None = None
    telegram_message_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    plain_fallback: bool = False
    fallback_sent: bool = False
    # Progress through a message sent in several parts (a long text split, or a picture followed
    # by its text): a restarted sender resumes after the last delivered part, never repeats one.
    pieces_sent: int = 0
    first_message_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: float | None = None
    is_reply: bool = False
