"""Delivery that loses nothing: a durable outbox table and the sender that drains it.

    outbox = Outbox(db, clock)
    await outbox.enqueue(chat_id, text, key="alert:42:fire", priority=CRITICAL)
    sender = OutboxSender(db, outbox, BotTransport(bot), settings, clock)
    asyncio.create_task(sender.run())
"""
from delivery.limits import Pacer
from delivery.sender import OutboxSender, SenderStats
from delivery.store import Outbox, OutboxError
from delivery.transport import BotTransport, Transport

__all__ = ["Outbox", "OutboxSender", "OutboxError", "SenderStats", "Pacer", "Transport", "BotTransport"]
