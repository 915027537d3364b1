"""The Processes section of /status: the whole in one line, each process in one, valid Telegram
HTML whatever a host is called (judged by the fake Bot API's own HTML rules)."""
from __future__ import annotations

from app.processes import ProcessView
from simulator.telegram_html import check_message, visible_text
from tokenwatch.cluster import render_processes

NOW = 1_700_000_000.0


def view(role: str, host: str, pid: int, *, age_s: float = 1.0, this: bool = False, fence: int | None = None,
         up: bool = True) -> ProcessView:
    return ProcessView(id=f"{host}:{pid}", role=role, host=host, pid=pid, started_at=NOW - 3600,
                       heartbeat_at=NOW - age_s, heartbeat_age_s=age_s, up=up, fence=fence, leadership="redis",
                       this=this)


def test_each_process_and_the_whole_in_valid_html_with_hostile_host_names():
    views = [view("leader", "<b>evil</b> & co", 10, this=True, fence=7), view("standby", "host-2", 11),
             view("worker", "w1", 12), view("worker", "w2", 13, age_s=90, up=False)]
    text = render_processes(views, NOW, kind="redis", lock_up=True)
    assert check_message(text, "HTML") is None
    plain = visible_text(text)
    assert "3 processes up: 1 leader, 1 standby, 1 worker · 1 down" in plain
    assert "<b>evil</b> & co" in plain and "(this one)" in plain and "term 7" in plain
    assert "down, last heartbeat 1m 30s ago" in plain


def test_no_leader_and_an_unreachable_lock_are_said():
    text = render_processes([view("standby", "a", 1), view("standby", "b", 2)], NOW, kind="redis", lock_up=False)
    assert check_message(text, "HTML") is None
    plain = visible_text(text)
    assert "no leader" in plain and "lock does not answer" in plain
