"""`make run` / `make test` install only when pyproject.toml or constraints.txt changed.

Checked with ``make -n`` (print, don't run) against a stand-in virtualenv, so nothing is installed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def planned(workdir: Path, target: str) -> str:
    # Under `make test` (as CI runs the suite) this is a nested make: without the outer make's
    # variables it plans as a fresh one would, and prints no "Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    result = subprocess.run(["make", "--no-print-directory", "-n", target, "VENV=venv", "PYTHON=python3"],
                            cwd=workdir, capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def age(path: Path, seconds_ago: float) -> None:
    stamp = time.time() - seconds_ago
    os.utime(path, (stamp, stamp))


def test_a_fresh_machine_creates_the_venv_and_installs(workdir):
    plan = planned(workdir, "run")
    assert "python3 -m venv venv" in plan
    assert "venv/bin/pip install --quiet -c constraints.txt -e ." in plan
    assert plan.rstrip().endswith("venv/bin/tokenwatch run")
    assert "-e '.[test]'" in planned(workdir, "test")


def test_nothing_changed_means_no_install(workdir):
    (workdir / "venv/bin").mkdir(parents=True)
    (workdir / "venv/bin/python").touch()
    for name in ("pyproject.toml", "constraints.txt"):
        age(workdir / name, 60)
    (workdir / "venv/.installed").touch()
    assert planned(workdir, "run").strip() == "venv/bin/tokenwatch run"
    assert "pip install" in planned(workdir, "test")  # test extras not installed yet

    (workdir / "venv/.installed-test").touch()
    assert planned(workdir, "test").strip().splitlines() == [
        "venv/bin/mypy",
        "venv/bin/python -m pytest -q -n 3 --dist loadfile --deselect tests/alerts/test_alerts_end_to_end.py",
        "venv/bin/python -m pytest -q tests/alerts/test_alerts_end_to_end.py"]
    for stamp in (".installed", ".installed-test"):  # clearly older than the change below: a file
        age(workdir / "venv" / stamp, 30)             # touched in the same clock tick is "not newer"

    (workdir / "constraints.txt").touch()  # a changed pin: install again
    assert "pip install --quiet -c constraints.txt -e ." in planned(workdir, "run")
    assert "pip install --quiet -c constraints.txt -e '.[test]'" in planned(workdir, "test")
