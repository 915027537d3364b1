"""Watching the watcher: a heartbeat to an external dead-man's switch while the PIPELINE is healthy.

If tokenwatch dies, nothing inside it can say so; an outside service (Healthchecks.io, Uptime
Kuma) raises the alarm when the pings stop. A ping says more than "the process lives": it is
sent as a success only while monitoring's latest snapshot is fresh and says the pipeline is
healthy (``MonitoringSnapshot.not_ready_reason``, the same judgement as ``/readyz``); otherwise
a failure ping carries the reason, so the switch fires at once instead of after its grace time::

    hb = Heartbeat(settings.heartbeat_url, snapshot=lambda: registry.coordinator.latest,
                   clock=clock, started_at=clock.time(), max_age_s=30.0)
    ctx.scheduler.add(hb.job(interval_s=settings.heartbeat_s))   # JobSpec "alerts.heartbeat"
    result = await hb.ping_once()          # PingResult(ok=True, healthy=True, reason=None, ...)

URL styles (chosen from the URL):

* Healthchecks.io (any URL without ``/api/push/``): success = ``GET <url>``; failure =
  ``POST <url>/fail`` with the reason as the body (Healthchecks shows it in the ping's log).
* Uptime Kuma push (``.../api/push/<token>``): ``GET <url>?status=up|down&msg=<reason>``
  (url-encoded; other query parameters of the pasted URL are kept, an empty ``ping=`` dropped).

The heartbeat's own failures (switch unreachable, HTTP errors) are logged on change of state
(one WARNING when pings start failing, one INFO when they recover, DEBUG in between) and are
never raised. The URL's secret part (path and query) is never logged, only its host.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from app.clock import SYSTEM_CLOCK, Clock
from app.scheduler import JobSpec
from monitoring.snapshot import MonitoringSnapshot

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 200  # Uptime Kuma shows msg in its list; keep it short


@dataclass(frozen=True)
class PingResult:
    sent: bool                 # a request was made (False while waiting for the first snapshot)
    ok: bool                   # the switch answered 2xx
    healthy: bool              # a success ping (True) or a failure ping (False)
    reason: str | None         # why unhealthy, or None
    status: int | None = None  # HTTP status, None when no answer
    error: str | None = None   # the request's own failure


def is_kuma(url: str) -> bool:
    """Whether ``url`` is an Uptime Kuma push URL (its path contains ``/api/push/``)."""
    return "/api/push/" in URL(url).path


def ping_request(url: str, healthy: bool, reason: str | None) -> tuple[str, URL, bytes | None]:
    """The (method, URL, body) of one ping in the URL's style (pure; see the module docstring).

        ping_request("https://hc-ping.com/abc", False, "stalled")  # ('POST', URL('https://hc-ping.com/abc/fail'), b'stalled')
        ping_request("https://k/api/push/t?status=up&msg=OK&ping=", False, "a b")[1]
        # URL('https://k/api/push/t?status=down&msg=a+b')
    """
    base = URL(url)
    text = (reason or "OK")[:MAX_REASON_CHARS]
    if is_kuma(url):
        query = {k: v for k, v in base.query.items() if not (k == "ping" and not v)}
        query.update(status="up" if healthy else "down", msg=text)
        return "GET", base.with_query(query), None
    if healthy:
        return "GET", base, None
    return "POST", base.with_path(base.path.rstrip("/") + "/fail"), text.encode("utf-8")


class Heartbeat:
    """Pings ``url`` on every run: success while healthy, failure with the reason while not.

    ``snapshot()`` returns monitoring's latest snapshot (``coordinator.latest``) or None.
    Before the first snapshot, nothing is sent during ``max_age_s`` after ``started_at``
    (the service is starting); after that, the missing snapshot is a failure.
    """

    def __init__(self, url: str, *, snapshot: Callable[[], MonitoringSnapshot | None],
                 clock: Clock = SYSTEM_CLOCK, started_at: float | None = None, max_age_s: float = 30.0,
                 timeout_s: float = 10.0) -> None:
        ping_request(url, True, None)  # a malformed URL fails here, at the start
        self.url = url
        self.host = URL(url).host or "?"
        self.style = "uptime-kuma" if is_kuma(url) else "healthchecks"
        self.snapshot = snapshot
        self.clock = clock
        self.started_at = clock.time() if started_at is None else started_at
        self.max_age_s = max_age_s
        self.timeout_s = timeout_s
        self.pings = 0
        self.failures = 0           # pings the switch did not accept
        self.last_error: str | None = None
        self.last_ok_at: float | None = None
        self._failing = False       # our pings are failing (logged on change)
        self._unhealthy: str | None = None  # the pipeline reason last reported (logged on change)

    def health(self, now: float) -> tuple[bool, str | None]:
        """(send a ping now?, reason it is unhealthy or None)."""
        snap = self.snapshot()
        if snap is None:
            if now - self.started_at < self.max_age_s:
                return False, None
            return True, "no metrics collection since the start"
        return True, snap.not_ready_reason(now, self.max_age_s)

    async def ping_once(self) -> PingResult:
        """One ping in the URL's style; never raises (the outcome is returned and logged on change)."""
        now = self.clock.time()
        send, reason = self.health(now)
        if not send:
            return PingResult(False, False, True, None)
        self._note_health(reason)
        method, url, body = ping_request(self.url, reason is None, reason)
        status: int | None = None
        error: str | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.request(method, url, data=body,
                                           headers={"Content-Type": "text/plain; charset=utf-8"} if body else None
                                           ) as response:
                    status = response.status
                    await response.read()
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        self.pings += 1
        self._note_outcome(error)
        return PingResult(True, error is None, reason is None, reason, status, error)

    def _note_health(self, reason: str | None) -> None:
        if reason is not None and self._unhealthy is None:
            log.warning("heartbeat: sending failure pings to %s (%s): %s", self.host, self.style, reason)
        elif reason is None and self._unhealthy is not None:
            log.info("heartbeat: pipeline healthy again; success pings to %s", self.host)
        self._unhealthy = reason

    def _note_outcome(self, error: str | None) -> None:
        if error is None:
            self.last_ok_at = self.clock.time()
            if self._failing:
                log.info("heartbeat: %s accepts pings again (after %d failed)", self.host, self.failures)
            self._failing = False
            self.failures = 0
            return
        self.failures += 1
        self.last_error = error
        if not self._failing:
            log.warning("heartbeat: ping to %s failed: %s (logged again when it recovers)", self.host, error)
        else:
            log.debug("heartbeat: ping to %s failed again: %s", self.host, error)
        self._failing = True

    @property
    def failing(self) -> bool:
        return self._failing

    def job(self, interval_s: float) -> JobSpec:
        """The scheduler job that pings every ``interval_s`` (budget: the request timeout + 5 s)."""
        async def run() -> None:
            await self.ping_once()

        return JobSpec("alerts.heartbeat", run, interval_s=interval_s, budget_s=self.timeout_s + 5.0)
