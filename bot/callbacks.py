"""Callback data for every button, signed so forged or tampered presses are refused.

Each button family is a ``CallbackData`` with a two-letter prefix. The packed
data gets a short HMAC appended (``st:r:Ab3dE9xQ``), keyed by a secret derived
from the bot token, so only buttons this bot made pass. Buttons that act (not
merely refresh) also carry the time they were issued and expire after
``max_age_s``. Everything fits Telegram's 64-byte limit (checked on packing).

    signer = CallbackSigner.from_token(settings.telegram_bot_token, clock)
    data = signer.pack(StatusCb(action=StatusAction.REFRESH))
    signer.unpack(StatusCb, data)        # -> StatusCb(action=<StatusAction.REFRESH: 'r'>)
    signer.unpack(StatusCb, "st:r:xxxx") # raises ForgedCallback

Handlers filter with ``Signed(StatusCb)`` which injects ``callback_data``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from enum import Enum
from typing import Any, TypeVar

from aiogram.filters import Filter
from aiogram.filters.callback_data import MAX_CALLBACK_LENGTH, CallbackData
from aiogram.types import CallbackQuery
from magic_filter import MagicFilter

from app.clock import SYSTEM_CLOCK, Clock

SIG_CHARS = 8
DEFAULT_MAX_AGE_S = 3600.0

CB = TypeVar("CB", bound=CallbackData)


class StatusAction(str, Enum):
    REFRESH = "r"


class JobsAction(str, Enum):
    REFRESH = "r"
    RUN = "run"
    RESTART_LOOP = "rl"  # restart a supervised loop (admin); ``job`` holds the loop id


class PingAction(str, Enum):
    RERUN = "r"
    TEST = "test"


class StatusCb(CallbackData, prefix="st"):
    """The /status message's buttons."""

    action: StatusAction


class JobsCb(CallbackData, prefix="jb"):
    """The /jobs message's buttons; ``run`` and ``rl`` (restart a loop) are admin-only and expire
    (``ts``: issued at)."""

    action: JobsAction
    job: str = ""
    ts: int = 0


class PingCb(CallbackData, prefix="pg"):
    """The /ping message's buttons; ``test`` sends a test message to the configured chats (admin)."""

    action: PingAction
    ts: int = 0


class GraphCb(CallbackData, prefix="gr"):
    """The /graph picture's buttons: a preset name or a metric name without ``tokenwatch_``, and a range."""

    target: str
    span: str


class DashboardAction(str, Enum):
    PIN = "pin"
    STOP = "stop"


class DashboardCb(CallbackData, prefix="db"):
    """The /dashboard message's buttons: pin it, stop keeping it current."""

    action: DashboardAction


class ForgedCallback(ValueError):
    """Callback data this bot did not make, or that does not parse."""


class CallbackSigner:
    """Appends and checks a short HMAC on packed callback data.

        signer = CallbackSigner(b"secret", clock)
        signer.unpack(PingCb, signer.pack(PingCb(action=PingAction.RERUN)))
    """

    def __init__(self, key: bytes, clock: Clock = SYSTEM_CLOCK, max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        if not key:
            raise ValueError("callback signing key must not be empty")
        self._key = key
        self.clock = clock
        self.max_age_s = max_age_s

    @classmethod
    def from_token(cls, token: str | None, clock: Clock = SYSTEM_CLOCK,
                   max_age_s: float = DEFAULT_MAX_AGE_S) -> "CallbackSigner":
        """Key derived from the bot token (stable across restarts); random without one."""
        if token:
            key = hashlib.sha256(b"tokenwatch-callback-v1:" + token.encode()).digest()
        else:
            key = secrets.token_bytes(32)
        return cls(key, clock, max_age_s)

    def _sig(self, packed: str) -> str:
        digest = hmac.new(self._key, packed.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:SIG_CHARS]

    def now_ts(self) -> int:
        return int(self.clock.time())

    def pack(self, data: CallbackData) -> str:
        """Packed and signed; ``ValueError`` if it would exceed 64 bytes or a value has ``:``."""
        packed = data.pack()
        signed = f"{packed}{data.__separator__}{self._sig(packed)}"
        if len(signed.encode()) > MAX_CALLBACK_LENGTH:
            raise ValueError(f"callback data too long ({len(signed.encode())} > {MAX_CALLBACK_LENGTH} bytes)")
        return signed

    def unpack(self, cls: type[CB], raw: str | None) -> CB:
        """Verify and parse ``raw`` as ``cls``; raises ``ForgedCallback`` otherwise."""
        if not raw or not isinstance(raw, str) or len(raw.encode()) > MAX_CALLBACK_LENGTH:
            raise ForgedCallback("empty or oversized callback data")
        packed, sep, sig = raw.rpartition(cls.__separator__)
        if not sep or not packed.startswith(cls.__prefix__ + cls.__separator__):
            raise ForgedCallback("not this button family")
        if not hmac.compare_digest(sig.encode(), self._sig(packed).encode()):
            raise ForgedCallback("bad signature")
        try:
            return cls.unpack(packed)
        except (TypeError, ValueError) as exc:
            raise ForgedCallback(f"malformed: {exc}") from None

    def is_expired(self, issued_ts: int) -> bool:
        """True when a button issued at ``issued_ts`` is older than ``max_age_s`` (or from the future)."""
        age = self.clock.time() - issued_ts
        return age > self.max_age_s or age < -60


class Signed(Filter):
    """Matches callback queries carrying a valid signed ``cls``; injects ``callback_data``.

        @router.callback_query(Signed(JobsCb, F.action == JobsAction.RUN), flags={"role": "admin"})
        async def refresh(query: CallbackQuery, callback_data: StatusCb): ...
    """

    def __init__(self, cls: type[CallbackData], rule: MagicFilter | None = None) -> None:
        self.cls = cls
        self.rule = rule

    def __str__(self) -> str:
        return f"Signed({self.cls.__name__})"

    async def __call__(self, query: CallbackQuery, cb_signer: CallbackSigner) -> bool | dict[str, Any]:
        try:
            data = cb_signer.unpack(self.cls, query.data)
        except ForgedCallback:
            return False
        if self.rule is not None and not self.rule.resolve(data):
            return False
        return {"callback_data": data}


class AlertAction(str, Enum):
    ACK = "a"
    SILENCE = "s"       # silence the incident for an hour
    ESCALATE = "e"
    DETAILS = "d"       # the timeline, as a new message (viewers too)
    REMEDIATE = "r"     # the rule's remediation button ``index``


class AlertCb(CallbackData, prefix="al"):
    """An incident's buttons (``bot.alert_buttons``), on the engine's alert messages and on /alerts cards.

    No ``ts``: these buttons never expire (an incident lives for hours or days); the incident's
    own state decides what a press may still do. ``card`` is 1 on an /alerts card, which the bot
    redraws after a change (the engine redraws its own alert messages)."""

    action: AlertAction
    incident: int
    index: int = 0
    card: int = 0


class QuietAction(str, Enum):
    UNSILENCE = "u"
    END_MAINTENANCE = "mo"


class QuietCb(CallbackData, prefix="qt"):
    """Unsilence (``id``: the silence) and End maintenance; no expiry: the service refuses what is over.
    ``card`` is 1 on the bot's own /silence and /maintenance replies, which it redraws after a change."""

    action: QuietAction
    id: int = 0
    card: int = 0


class TuneAction(str, Enum):
    APPLY = "ap"
    REVERT = "rv"


class TuneCb(CallbackData, prefix="tn"):
    """/tune's buttons. Apply names the rule by ``rule_key`` and expires (``ts``): it applies the
    suggestion as computed at press time, which must not differ much from the one shown. Revert
    names a recorded change (``change``) and does not expire; a second revert changes nothing."""

    action: TuneAction
    rule: str = ""
    change: int = 0
    ts: int = 0
    card: int = 0  # 1 on the /tune reply (the bot redraws it after a change)


class KnobAction(str, Enum):
    REVERT = "rv"


class KnobCb(CallbackData, prefix="kn"):
    """Revert buttons on recorded knob changes (the self-healing announcements, /tune's Controls).
    ``id`` names the action in the ledger; no expiry: the ledger refuses what was already reverted
    or has changed since. ``card`` is 1 on the /tune Controls reply, which the bot redraws."""

    action: KnobAction
    id: int
    card: int = 0


def rule_key(name: str) -> str:
    """A short, stable, ``:``-free key for a rule name (names may be 48 characters; callback data is 64 bytes)."""
    return base64.urlsafe_b64encode(hashlib.sha256(name.encode()).digest()).decode()[:10]
