"""The /jobs message: every scheduled job's health, with Refresh and (for admins) Run-now buttons.

    render_jobs(scheduler.job_stats(), now=clock.time())
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import CallbackSigner, JobsAction, JobsCb
from delivery.html import bold, code, esc, truncate
from bot.views.fmt import fmt_duration, fmt_when


def render_jobs(stats: Sequence[Any], now: float, *, scheduler_running: bool = True) -> str:
    if not scheduler_running:
        return f"⏱ {bold('Jobs')}\n\nThe scheduler is not running in this process."
    if not stats:
        return f"⏱ {bold('Jobs')}\n\nNo jobs are registered."
    lines = [f"⏱ {bold('Jobs')} ({len(stats)})"]
    for s in stats:
        running_since = getattr(s, "running_since", None)
        state = f"running for {fmt_duration(now - running_since)}" if running_since else "idle"
        icon = "🟢" if not getattr(s, "last_error", None) else "🟠"
        lines += [
            "",
            f"{icon} {code(s.id)} — {esc(state)}",
            f"   next {esc(fmt_when(getattr(s, 'next_run_time', None), now))}"
            f" · last took {esc(fmt_duration(getattr(s, 'last_duration_s', None)))}"
            f" · runs {code(getattr(s, 'runs', 0))}, errors {code(getattr(s, 'errors', 0))}",
        ]
        if getattr(s, "last_error", None):
            when = fmt_when(getattr(s, "last_error_at", None), now)
            lines.append(f"   last error ({esc(when)}): {truncate(s.last_error, 200)}")
    return "\n".join(lines)


def jobs_keyboard(job_ids: Sequence[str], signer: CallbackSigner, *, with_run: bool) -> InlineKeyboardMarkup:
    """Refresh for everyone; one "Run now" per job when ``with_run`` (ids that don't fit are skipped)."""
    rows = [[InlineKeyboardButton(text="🔄 Refresh", callback_data=signer.pack(JobsCb(action=JobsAction.REFRESH)))]]
    if with_run:
        row: list[InlineKeyboardButton] = []
        for job_id in job_ids:
            try:
                data = signer.pack(JobsCb(action=JobsAction.RUN, job=job_id, ts=signer.now_ts()))
            except ValueError:
                continue
            row.append(InlineKeyboardButton(text=f"▶ {job_id}"[:64], callback_data=data))
            if len(row) == 2:
                rows.append(row)
                row = []
        if row:
            rows.append(row)
    return InlineKeyboardMarkup(inline_keyboard=rows)
