"""A refused bot token (401 Unauthorized) stops all sending, says so once, and heals by probing.

Dead-lettering every row because the token was revoked would lose them all; instead the
rows stay pending, the operator is told (ERROR log naming TELEGRAM_BOT_TOKEN, the
``tokenwatch_telegram_unauthorized`` metric, /ping and ``tokenwatch doctor``), and a cheap
probe (``getMe``) every ``probe_interval_s`` finds out when the token works again::

    guard = TokenGuard(clock, probe_interval_s=60)
    guard.refuse("Unauthorized")        # logged at ERROR once per episode
    guard.refused                       # True: the dispatch loop sends nothing
    if guard.probe_due():
        await guard.probe(transport)    # getMe; sending resumes when it succeeds
"""
from __future__ import annotations

import logging

from app.clock import SYSTEM_CLOCK, Clock
from delivery.transport import Transport, TransportError, Unauthorized

log = logging.getLogger(__name__)

STOPPED_MESSAGE = ("Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): sending stopped, messages stay "
                   "queued; fix TELEGRAM_BOT_TOKEN (from @BotFather) and check with: tokenwatch doctor")


class TokenGuard:
    """Whether Telegram currently accepts the bot token, as the sender last found out."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, *, probe_interval_s: float = 60.0) -> None:
        self.clock = clock
        self.probe_interval_s = probe_interval_s
        self.refused_since: float | None = None  # epoch seconds
        self.reason: str | None = None
        self._next_probe = 0.0  # monotonic

    @property
    def refused(self) -> bool:
        return self.refused_since is not None

    def refuse(self, reason: str) -> None:
        if self.refused_since is None:
            self.refused_since = self.clock.time()
            self.reason = reason
            log.error("%s (Telegram said: %s)", STOPPED_MESSAGE, reason)
        self._next_probe = self.clock.monotonic() + self.probe_interval_s

    def accept(self) -> None:
        if self.refused_since is not None:
            log.warning("Telegram accepts TELEGRAM_BOT_TOKEN again after %.0fs: sending resumes",
                        max(0.0, self.clock.time() - self.refused_since))
        self.refused_since = None
        self.reason = None

    def probe_in(self) -> float:
        """Seconds until the next probe is due (0: now)."""
        return max(0.0, self._next_probe - self.clock.monotonic())

    async def probe(self, transport: Transport) -> bool:
        """Ask Telegram (``getMe``) whether the token works; True (and resume) if it does."""
        self._next_probe = self.clock.monotonic() + self.probe_interval_s
        probe = getattr(transport, "probe", None)
        try:
            if probe is not None:
                await probe()
        except Unauthorized as exc:
            self.reason = str(exc) or self.reason
            return False
        except TransportError as exc:  # unreachable or throttled: no verdict; probe again later
            log.info("token probe inconclusive (%s); probing again in %.0fs", exc, self.probe_interval_s)
            return False
        self.accept()
        return True
