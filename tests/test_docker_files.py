"""The Docker files, read without a Docker engine: the compose file parsed as YAML, the
Dockerfile read as text. What they must guarantee: `cp .env.example .env` cannot make the
published port unreachable, ports are published on 127.0.0.1, the SQLite data has a named
volume, and the image contains every package the project installs."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    """The settings `cp .env.example .env` makes active (commented lines are not)."""
    active = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, value = line.split("=", 1)
            active[name.strip()] = value.split(" #", 1)[0].strip()
    return active


def test_env_example_does_not_override_the_images_listen_address():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HTTP_HOST=0.0.0.0" in dockerfile
    assert "HTTP_HOST" not in env_example()
    service = compose()["services"]["tokenwatch"]
    # compose's `environment:` beats env_file, so even an edited .env keeps the container reachable
    assert service["environment"]["HTTP_HOST"] == "0.0.0.0"
    assert str(service["environment"]["HTTP_PORT"]) == "8080"
    assert [entry["path"] for entry in service["env_file"]] == [".env"]


def test_ports_are_published_on_loopback_only():
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert "127.0.0.1:8080:8080" in compose()["services"]["tokenwatch"]["ports"]


def test_sqlite_data_lives_in_a_named_volume():
    doc = compose()
    mounts = [v.split(":") for v in doc["services"]["tokenwatch"]["volumes"]]
    named = {source for source, target, *_ in mounts if target == "/app/data"}
    assert named and named <= set(doc["volumes"])
    assert "mkdir -p /app/data && chown tokenwatch /app/data" in (ROOT / "Dockerfile").read_text()


def test_the_image_copies_every_installed_package():
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"


def test_readme_states_the_minimum_compose_version():
    assert "Docker Compose v2.24.0" in (ROOT / "README.md").read_text()
    assert "v2.24.0" in (ROOT / "docker-compose.yml").read_text()


def test_workers_scale_beside_one_run_on_postgres_and_redis():
    services = compose()["services"]
    worker, run = services["worker"], services["tokenwatch"]
    assert worker["command"] == ["worker"] and worker["build"] == run["build"]
    env = worker["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://") and env["REDIS_URL"].startswith("redis://")
    assert env["DATABASE_URL"] == run["environment"]["DATABASE_URL"] and env["REDIS_URL"] == run["environment"]["REDIS_URL"]
    assert "ports" not in worker  # --scale worker=3 cannot publish one host port three times
    assert worker["deploy"]["replicas"] == 0  # `docker compose up` alone: the single service, as before
    assert {name: dep["condition"] for name, dep in worker["depends_on"].items()} == {
        "postgres": "service_healthy", "redis": "service_healthy", "tokenwatch": "service_healthy"}
    # every long-running service has a health check: its own, or the image's HEALTHCHECK (/healthz)
    assert "HEALTHCHECK" in (ROOT / "Dockerfile").read_text()
    for name in ("postgres", "redis", "market"):
        assert services[name]["healthcheck"]["test"], name


def test_systemd_units_use_notify_and_the_watchdog():
    for unit in ("tokenwatch.service", "tokenwatch-worker@.service"):
        text = (ROOT / "deploy" / "systemd" / unit).read_text()
        settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
        assert settings["Type"] == "notify" and int(settings["WatchdogSec"]) >= 10, unit
        assert settings["NotifyAccess"] == "main" and settings["Restart"] == "on-failure", unit
        assert settings["ExecStart"].split()[-1] == ("run" if unit == "tokenwatch.service" else "worker"), unit
