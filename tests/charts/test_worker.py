"""The render worker draws in another process, keeps the event loop turning, renders one
picture per chat at a time (a repeat is refused, not queued) and bounds its queue."""
from __future__ import annotations

import asyncio
import os

import pytest

from app.clock import ManualClock
from charts.data import ChartData, fetch_chart
from charts.presets import get_preset
from charts.sparkline import sparkline
from monitoring.trend import theil_sen, time_to_reach
from charts.worker import AlreadyDrawing, RenderBusy, RenderWorker
from monitoring.store import MetricStore
from tests.charts.history import craft_history

NOW = 1_790_000_000.0


@pytest.fixture
async def chart(sqlite_db) -> ChartData:
    store = MetricStore(sqlite_db, ManualClock(NOW))
    await craft_history(store, NOW)
    data = await fetch_chart(store, get_preset("api"), "24h", NOW)
    assert isinstance(data, ChartData)
    return data


@pytest.fixture
async def worker():
    w = RenderWorker(processes=2, max_queue=10)
    await w.start()
    yield w
    await w.stop()


class LoopProbe:
    """Counts loop turns of a task that sleeps 5 ms at a time (a blocked loop counts none)."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    def __enter__(self) -> "LoopProbe":
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_ten_renders_run_in_other_processes_while_the_loop_keeps_turning(worker, chart):
    with LoopProbe() as probe:
        pictures = await asyncio.gather(*(worker.render(chat, chart) for chat in range(10)))
    assert all(p.png.startswith(b"\x89PNG") for p in pictures)
    assert {p.pid for p in pictures}.isdisjoint({os.getpid()})
    # Ten drawings take far longer than one 5 ms turn; a blocked loop would not have turned at all.
    assert probe.ticks >= 10
    assert worker.rendered == 10 and worker.queued == 0


async def test_a_second_render_for_the_same_chat_is_refused_not_queued(worker, chart):
    first = asyncio.create_task(worker.render(42, chart))
    await asyncio.sleep(0)  # the first one holds chat 42's slot now
    assert worker.is_drawing(42)
    with pytest.raises(AlreadyDrawing):
        await worker.render(42, chart)
    other = await worker.render(43, chart)  # other chats are not held up
    assert (await first).png and other.png
    assert not worker.is_drawing(42) and worker.refused == 1


async def test_a_full_queue_refuses_more(chart):
    w = RenderWorker(processes=1, max_queue=2, mode="thread")
    try:
        with w.slot(1), w.slot(2):
            with pytest.raises(RenderBusy):
                await w.render(3, chart)
        assert (await w.render(3, chart)).png  # room again once the slots are free
    finally:
        await w.stop()


def test_theil_sen_ignores_a_spike_and_predicts_the_limit():
    ts = [float(t) for t in range(0, 600, 60)]
    values = [100.0 + 2.0 * t / 60 for t in ts]
    values[4] = 10_000.0  # one wild outlier
    fit = theil_sen(ts, values)
    assert fit is not None and fit.slope == pytest.approx(2.0 / 60)
    eta = time_to_reach(fit, now=ts[-1], current=values[-1], limit=218.0)
    assert eta == pytest.approx(50 * 60)  # 100 more units at 2 per minute
    assert time_to_reach(theil_sen(ts, [5.0] * len(ts)), now=ts[-1], current=5.0, limit=10.0) is None
    assert time_to_reach(fit, now=ts[-1], current=300.0, limit=200.0) == 0.0
    assert theil_sen([1.0, 2.0], [1.0, 2.0]) is None


def test_sparklines():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([3, 3, 3]) == "▄▄▄"
    assert sparkline([]) == "" and sparkline([float("nan")]) == ""
    assert len(sparkline(list(range(1000)), width=12)) == 12


KILLED_SERVICE = """
import asyncio, os, sys
from charts.worker import RenderWorker

async def main():
    worker = RenderWorker(processes=1)
    await worker.start()
    with open(sys.argv[1], "w") as f:
        f.write(" ".join(map(str, sorted(worker.pids))))
    os._exit(9)   # killed: no stop(), no atexit

if __name__ == "__main__":
    asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:      # a zombie (exited, not reaped) is gone for our purpose
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


async def test_drawing_processes_exit_when_the_service_is_killed(tmp_path):
    """A service killed without stop() (SIGKILL, the OOM killer) leaves no drawing process behind."""
    import sys

    script = tmp_path / "killed_service.py"
    script.write_text(KILLED_SERVICE)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    written = tmp_path / "pids"
    # no pipes: a leftover drawing process would hold them open, and asyncio waits for them to close
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script), str(written), cwd=root,
                                                env={**os.environ, "PYTHONPATH": root},
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(proc.wait(), 60) == 9
    pids = [int(p) for p in written.read_text().split()]
    assert pids and proc.pid not in pids
    deadline = asyncio.get_running_loop().time() + 30     # they look every 2 s
    while any(_alive(p) for p in pids):
        assert asyncio.get_running_loop().time() < deadline, f"still alive: {[p for p in pids if _alive(p)]}"
        await asyncio.sleep(0.2)
