"""Writes deploy/grafana/dashboards/tokenwatch.json from the /graph presets (charts.presets), so
Grafana shows the same pictures as the chat:

    .venv/bin/python deploy/grafana/build_dashboard.py

One row per preset, one panel per preset panel; gauges as they are, counters as their increase
per minute (``rate(x[5m]) * 60``), shares as percent. The ``alerts`` preset is drawn from the
database, not from Prometheus: its row holds a text panel pointing to ``/graph alerts``. The datasource is a dashboard variable,
so the file imports as is (Dashboards -> Import) and provisions as is (docker compose --profile
grafana up). tests/charts/test_grafana.py checks every metric it names is served by /metrics.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from charts import units  # noqa: E402
from charts.presets import PRESETS, Line, Panel  # noqa: E402
from monitoring import metric_names as m  # noqa: E402

OUT = Path(__file__).resolve().parent / "dashboards" / "tokenwatch.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
UNITS = {units.BYTES: "bytes", units.SECONDS: "s", units.PERCENT: "percent", units.PER_MINUTE: "short",
         units.COUNT: "short"}


def _selector(labels: dict[str, str] | None) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _legend(line: Line) -> str:
    if line.legend == "{*}":
        return ""
    legend = re.sub(r"\{(\w+)\}", r"{{\1}}", line.legend)
    return legend.replace("p{{quantile}}", "q{{quantile}}")


def _expr(line: Line) -> str:
    sel = _selector(dict(line.labels) if line.labels else (dict(line.family) if line.family else None))
    expr = f"{line.metric}{sel}"
    if line.counter:
        expr = f"rate({expr}[5m]) * 60"
    if line.scale != 1.0:
        expr = f"{line.scale:g} * {expr}"
    return expr


def _panel(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    targets: list[dict[str, Any]] = []
    for line in panel.lines:
        targets.append({"datasource": DS, "expr": _expr(line), "legendFormat": _legend(line),
                        "refId": chr(ord("A") + len(targets))})
    for level in (*panel.thresholds, *((panel.limit,) if panel.limit else ())):
        if level.metric is not None:
            share = f"{level.share:g} * " if level.share != 1.0 else ""
            targets.append({"datasource": DS, "expr": f"{share}{level.metric}", "legendFormat": level.legend,
                            "refId": chr(ord("A") + len(targets))})
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": "red", "value": lv.value} for lv in panel.thresholds if lv.value is not None]
    return {
        "id": pid, "type": "timeseries", "title": panel.title, "datasource": DS,
        "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
        "fieldConfig": {"defaults": {
            "unit": UNITS.get(panel.unit, "short"),
            "custom": {"stacking": {"mode": "normal" if panel.stacked else "none"},
                       "fillOpacity": 60 if panel.stacked else 0,
                       "thresholdsStyle": {"mode": "dashed" if len(steps) > 1 else "off"}},
            "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "none"}},
        "targets": targets,
    }


def _flow_panels(pid: int, y: int) -> list[dict[str, Any]]:
    def ts(title: str, expr: str, legend: str, unit: str, x: int, i: int) -> dict[str, Any]:
        return {"id": i, "type": "timeseries", "title": title, "datasource": DS,
                "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"datasource": DS, "expr": expr, "legendFormat": legend, "refId": "A"}]}

    return [
        ts("Tokens by status", m.TOKENS, "{{status}}", "short", 0, pid),
        ts("Status changes per minute", m.TRANSITIONS_PER_MINUTE, "{{from}} -> {{to}}", "short", 8, pid + 1),
        ts("Activation success rate", f"100 * {m.ACTIVATION_SUCCESS_RATE}", "success rate", "percent", 16, pid + 2),
    ]


def _alerts_note(pid: int, y: int) -> dict[str, Any]:
    """The ``alerts`` preset reads the alert engine's tables, not Prometheus: a text panel says
    where to find the timeline instead of a chart with no query."""
    return {"id": pid, "type": "text", "title": "Incidents by rule", "gridPos": {"h": 4, "w": 24, "x": 0, "y": y},
            "options": {"mode": "markdown", "content": (
                "The incident timeline (firings by rule, acknowledgments, maintenance windows) comes from "
                "tokenwatch's database, not from `/metrics`: send `/graph alerts 24h` in Telegram. "
                "The chat's metric pictures shade incidents and maintenance windows on every panel.")}}


def build() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for preset in PRESETS.values():
        panels.append({"id": pid, "type": "row", "title": f"{preset.title} ({preset.name})", "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        if preset.kind == "flow":
            panels += _flow_panels(pid, y)
            pid += 3
        elif preset.kind == "alerts":
            panels.append(_alerts_note(pid, y))
            pid += 1
        else:
            for i, panel in enumerate(preset.panels):
                panels.append(_panel(panel, pid, 8 * (i % 3), y + 8 * (i // 3)))
                pid += 1
        y += 4 if preset.kind == "alerts" else 8 * max(1, (len(preset.panels) + 2) // 3)
    return {
        "uid": "tokenwatch", "title": "tokenwatch", "tags": ["tokenwatch"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource",
                                 "query": "prometheus", "current": {}, "hide": 0}]},
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")
