"""Data flows one way: each package imports only the packages below it (the brief's house plan).
recovery acts on tokens/ only through the protocols in recovery.controllers, so it never imports it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED: dict[str, set[str]] = {
    "app": set(),
    "tokens": {"app"},
    "delivery": {"app"},
    "monitoring": {"app", "tokens"},
    "recovery": {"app", "monitoring", "delivery"},
    "alerts": {"app", "tokens", "monitoring", "delivery", "recovery"},
    "charts": {"app", "tokens", "monitoring", "alerts", "recovery"},
    "simulator": {"app", "tokens"},
    "bot": {"app", "tokens", "monitoring", "delivery", "recovery", "alerts", "charts"},
    "tokenwatch": {"app", "tokens", "monitoring", "delivery", "recovery", "alerts", "charts", "bot", "simulator"},
}


def imports_of(package: str) -> dict[str, set[str]]:
    """Other project packages each module of ``package`` imports: {module path: {package}}."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in ALLOWED and top != package:
                    found.setdefault(str(path.relative_to(ROOT)), set()).add(top)
    return found


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = {module: sorted(pkgs - ALLOWED[module.split("/")[0]])
             for pkg in ALLOWED for module, pkgs in imports_of(pkg).items()
             if pkgs - ALLOWED[pkg]}
    assert wrong == {}


def test_the_allowed_graph_has_no_cycle() -> None:
    seen: dict[str, int] = {}

    def visit(pkg: str, path: tuple[str, ...]) -> None:
        assert pkg not in path, " -> ".join(path + (pkg,))
        if seen.get(pkg):
            return
        for dep in ALLOWED[pkg]:
            visit(dep, path + (pkg,))
        seen[pkg] = 1

    for pkg in ALLOWED:
        visit(pkg, ())
