"""The Grafana dashboard (deploy/grafana/) is current with the presets, importable JSON, and
names only metrics that a running tokenwatch serves on /metrics."""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp

from app.settings import Settings
from charts.presets import PRESETS
from tokenwatch.service import Service

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tokenwatch.json"
METRIC = re.compile(r"\b(tokenwatch_[a-z0-9_]+)")
EXPOSED = re.compile(r"^(tokenwatch_[a-z0-9_]+)(?:\{|\s)", re.M)


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queried_metrics(board: dict) -> set[str]:
    return {name for panel in board["panels"] for target in panel.get("targets", [])
            for name in METRIC.findall(target["expr"])}


def test_dashboard_is_built_from_the_presets():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_dashboard", ROOT / "deploy/grafana/build_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == dashboard(), "run deploy/grafana/build_dashboard.py"
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == [f"{p.title} ({p.name})" for p in PRESETS.values()]
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    assert {"name": "datasource", "type": "datasource"}.items() <= dashboard()["templating"]["list"][0].items()


async def test_every_metric_a_panel_queries_is_served_by_metrics(tmp_path):
    wanted = queried_metrics(dashboard())
    assert len(wanted) >= 15
    settings = Settings(
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'tw.db'}", http_port=0, status_line=False,
        sim_migration_interval_s=0.3, hot_check_interval_s=1, cold_check_interval_s=2,
        collect_interval_s=1, process_interval_s=0.5,
    )
    console = (tmp_path / "console.txt").open("w")
    service = Service(settings, console_input=False, console_out=console)
    await service.start()
    served: set[str] = set()
    try:
        url = f"{service.monitoring.http.url}/metrics"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while loop.time() < deadline:
                async with http.get(url) as resp:
                    served = set(EXPOSED.findall(await resp.text()))
                if wanted <= served:
                    break
                await asyncio.sleep(1)
    finally:
        await service.stop()
        console.close()
    assert not wanted - served, f"panels query metrics /metrics does not serve: {sorted(wanted - served)}"
