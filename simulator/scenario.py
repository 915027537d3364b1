"""Timed fault scenarios for the local market (``SIM_SCENARIO=name-or-path``).

A scenario file is a JSON list of steps, run relative to the market's start::

    [
      {"at_s": 10, "set": {"error_rate": 0.3, "error_codes": [502, 503]}},
      {"at_s": 20, "ws_disconnect": true},
      {"at_s": 30, "reset": true}
    ]

A step may ``set`` faults (fields of ``simulator.faults``), ``reset`` them, and/or
drop websockets (``ws_disconnect``). Shipped scenarios live in
``simulator/scenarios/*.json`` and are found by name::

    scenario = load_scenario("flaky_api")          # or a path to a .json file
    print(available_scenarios())
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.faults import FaultController, FaultError

SCENARIO_DIR = Path(__file__).with_name("scenarios")
_STEP_KEYS = {"at_s", "set", "reset", "ws_disconnect", "note"}


class ScenarioError(ValueError):
    """A scenario that cannot be found or read; the message says where."""


@dataclass(frozen=True)
class ScenarioStep:
    at_s: float
    set: dict[str, Any] = field(default_factory=dict)
    reset: bool = False
    ws_disconnect: bool = False
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    """A validated, time-ordered list of steps.

    Example::

        scenario = parse_scenario([{"at_s": 0, "set": {"storm_s": 10}}], name="inline")
        assert scenario.steps[0].set == {"storm_s": 10.0}
    """

    name: str
    steps: tuple[ScenarioStep, ...]

    @property
    def duration_s(self) -> float:
        return self.steps[-1].at_s if self.steps else 0.0


def available_scenarios() -> list[str]:
    """Names of the scenarios shipped with the simulator."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def parse_scenario(data: Any, name: str = "scenario") -> Scenario:
    """Validate scenario data (already decoded JSON)."""
    if not isinstance(data, list):
        raise ScenarioError(f"{name}: a scenario is a JSON list of steps")
    checker = FaultController()
    steps: list[ScenarioStep] = []
    for index, raw in enumerate(data):
        where = f"{name}: step {index}"
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: must be an object")
        unknown = sorted(set(raw) - _STEP_KEYS)
        if unknown:
            raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}")
        at_s = raw.get("at_s")
        if isinstance(at_s, bool) or not isinstance(at_s, (int, float)) or at_s < 0:
            raise ScenarioError(f"{where}: at_s must be a number >= 0, got {at_s!r}")
        changes = raw.get("set", {})
        try:
            clean = checker.validate(changes)
        except FaultError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
        reset, disconnect = raw.get("reset", False), raw.get("ws_disconnect", False)
        if not isinstance(reset, bool) or not isinstance(disconnect, bool):
            raise ScenarioError(f"{where}: reset and ws_disconnect must be true or false")
        if not (clean or reset or disconnect):
            raise ScenarioError(f"{where}: does nothing (give set, reset or ws_disconnect)")
        steps.append(ScenarioStep(float(at_s), clean, reset, disconnect, str(raw.get("note", ""))))
    steps.sort(key=lambda step: step.at_s)
    return Scenario(name=name, steps=tuple(steps))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name (``"outage"``) or any JSON file by path."""
    text = str(name_or_path).strip()
    if not text:
        raise ScenarioError("empty scenario name")
    path = Path(text).expanduser()
    if not path.is_file():
        candidate = SCENARIO_DIR / (text if text.endswith(".json") else f"{text}.json")
        if "/" in text or not candidate.is_file():
            raise ScenarioError(f"scenario {text!r} not found; shipped: {', '.join(available_scenarios())}")
        path = candidate
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc}") from None
    return parse_scenario(data, name=path.stem)
