"""The /jobs message: every scheduled job's health and every supervised loop's state, with
Refresh and (for admins) Run-now and Restart buttons.

    render_jobs(scheduler.job_stats(), now=clock.time(), loops=supervisor.loop_stats())
    jobs_keyboard(job_ids, signer, with_run=True, loop_ids=supervisor.loop_ids())
"""
from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from app.scheduler import JobStats
from app.supervisor import LoopStats
from bot.callbacks import CallbackSigner, JobsAction, JobsCb
from delivery.html import bold, code, esc, truncate
from bot.views.fmt import fmt_duration, fmt_when


LOOP_ICONS = {"running": "🟢", "restarting": "🟠", "failed": "🔴", "stopped": "⚪", "idle": "⚪"}


def render_jobs(stats: Sequence[JobStats], now: float, *, scheduler_running: bool = True,
                loops: Sequence[LoopStats] | None = None) -> str:
    """The scheduler's jobs, then the supervised loops (``loops``: ``LoopStats``; None = no supervisor)."""
    text = _render_scheduler(stats, now, scheduler_running=scheduler_running)
    if loops is not None:
        text += "\n\n" + render_loops(loops, now)
    return text


def render_loops(loops: Sequence[LoopStats], now: float) -> str:
    """One block per supervised loop: state, uptime or next restart, restarts, last beat, last error."""
    if not loops:
        return f"🔁 {bold('Loops')}\n\nNo loops are supervised."
    lines = [f"🔁 {bold('Loops')} ({len(loops)})"]
    for s in loops:
        state = str(s.state)
        if state == "running":
            detail = f"running for {fmt_duration(s.uptime_s(now))}"
        elif state == "restarting":
            detail = f"restarting {fmt_when(s.next_restart_at, now)}"
        else:
            detail = state
        lines += ["", f"{LOOP_ICONS.get(state, '⚪')} {code(s.id)} — {esc(detail)}"]
        facts = [f"restarts {code(s.restarts)}"]
        if s.hangs:
            facts.append(f"hung {code(s.hangs)}×")
        if s.heartbeat_budget_s is not None:
            facts.append(f"last beat {esc(fmt_when(s.last_beat, now))} (budget {esc(fmt_duration(s.heartbeat_budget_s))})")
        lines.append("   " + " · ".join(facts))
        if s.last_error:
            lines.append(f"   last error ({esc(fmt_when(s.last_error_at, now))}): {truncate(s.last_error, 200)}")
    return "\n".join(lines)


def _render_scheduler(stats: Sequence[JobStats], now: float, *, scheduler_running: bool) -> str:
    if not scheduler_running:
        return f"⏱ {bold('Jobs')}\n\nThe scheduler is not running in this process."
    if not stats:
        return f"⏱ {bold('Jobs')}\n\nNo jobs are registered."
    lines = [f"⏱ {bold('Jobs')} ({len(stats)})"]
    for s in stats:
        state = f"running for {fmt_duration(now - s.running_since)}" if s.running_since else "idle"
        icon = "🟢" if not s.last_error else "🟠"
        lines += [
            "",
            f"{icon} {code(s.id)} — {esc(state)}" + (f" · {esc(s.schedule)}" if s.schedule else ""),
            f"   next {esc(fmt_when(s.next_run_time, now))}"
            f" · last took {esc(fmt_duration(s.last_duration_s))}"
            f" · runs {code(s.runs)}, errors {code(s.errors)}",
        ]
        if s.last_error:
            lines.append(f"   last error ({esc(fmt_when(s.last_error_at, now))}): {truncate(s.last_error, 200)}")
    return "\n".join(lines)


def jobs_keyboard(job_ids: Sequence[str], signer: CallbackSigner, *, with_run: bool,
                  loop_ids: Sequence[str] = ()) -> InlineKeyboardMarkup:
    """Refresh for everyone; when ``with_run``, one "▶ Run now" per job and one "↻ Restart" per
    supervised loop (ids whose callback data would not fit are skipped)."""
    rows = [[InlineKeyboardButton(text="🔄 Refresh", callback_data=signer.pack(JobsCb(action=JobsAction.REFRESH)))]]
    if with_run:
        rows += _action_rows(job_ids, JobsAction.RUN, "▶", signer)
        rows += _action_rows(loop_ids, JobsAction.RESTART_LOOP, "↻", signer)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _action_rows(ids: Sequence[str], action: JobsAction, icon: str,
                 signer: CallbackSigner) -> list[list[InlineKeyboardButton]]:
    rows: list[list[InlineKeyboardButton]] = []
    row: list[InlineKeyboardButton] = []
    for item in ids:
        try:
            data = signer.pack(JobsCb(action=action, job=item, ts=signer.now_ts()))
        except ValueError:
            continue
        row.append(InlineKeyboardButton(text=f"{icon} {item}"[:64], callback_data=data))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    return rows
