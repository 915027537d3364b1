"""POST JSON to an operator's webhook (the fallback for critical alerts, escalation steps).

Failures are returned, never raised: a webhook that is down must not stop what called it::

    poster = WebhookPoster(timeout_s=5.0)
    error = await poster.post("https://hooks.example/tw", {"source": "tokenwatch", "text": "..."})
    if error is not None:
        log.warning("webhook failed: %s", error)     # e.g. "HTTP 500" or "TimeoutError"
    await poster.close()
"""
from __future__ import annotations

from typing import Any


class WebhookPoster:
    """One lazily opened aiohttp session with a total timeout per request."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.posts = 0
        self.failures = 0
        self._http: Any = None

    async def post(self, url: str, payload: dict[str, Any]) -> str | None:
        """POST ``payload`` as JSON; ``None`` on a 2xx answer, else a short error text."""
        import aiohttp

        try:
            if self._http is None:
                self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            async with self._http.post(url, json=payload) as resp:
                if resp.status >= 300:
                    raise RuntimeError(f"HTTP {resp.status}")
            self.posts += 1
            return None
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            self.failures += 1
            return str(exc) or type(exc).__name__

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
