"""What delivering one outbox row came to: the value ``RowDelivery.deliver`` returns.

The dispatch loop records each outcome on the row (in the store) and never has to tell
"retry" from "dead" by catching an exception::

    outcome = await delivery.deliver(row)
    match outcome:
        case Sent(message_id=mid):           # mark sent with Telegram's message id
        case RetryAt(at=t, error=e):         # stays pending until t (epoch seconds)
        case Dead(reason=r):                 # never deliverable: dead letter, logged
        case TokenRefused(reason=r):         # 401: stop all sending, the row stays pending as it was
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    """Delivered; ``message_id`` is the (first) Telegram message id."""

    message_id: int | None


@dataclass(frozen=True)
class RetryAt:
    """Not delivered for a temporary reason; try again at ``at`` (epoch seconds).

    ``counted``: the attempt counts towards the row's backoff (a 429 or a known wait does not).
    """

    at: float
    error: str
    counted: bool = True


@dataclass(frozen=True)
class Dead:
    """Telegram refused the row for good (chat not found, bot blocked...)."""

    reason: str


@dataclass(frozen=True)
class TokenRefused:
    """Telegram answered 401 Unauthorized: the bot token is wrong or revoked; nothing can be sent."""

    reason: str


Outcome = Sent | RetryAt | Dead | TokenRefused
