"""Imports point down the layers only (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "seqscore"

#: Lower number = lower layer. A module may import its own package and anything lower.
LAYERS: dict[str, int] = {
    "types": 0, "errors": 0, "clock": 0, "settings": 0, "event_schema": 0, "apikeys": 0,
    "scoring": 1,
    "storage": 2, "ingest": 2, "compute": 2, "demo": 2,
    "service": 3,
    "api": 4,
    "server": 5, "cli": 6, "__main__": 7, "__init__": 0,
}


#: The dashboard is part of the HTTP layer (design.md: "api (routes, auth, dashboard)").
SAME_UNIT = {"dashboard": "api"}


def _unit(module_path: Path) -> str:
    unit = module_path.relative_to(SRC).parts[0].removesuffix(".py")
    return SAME_UNIT.get(unit, unit)


def _imports(module_path: Path) -> set[str]:
    tree = ast.parse(module_path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "seqscore" and len(parts) > 1:
                found.add(SAME_UNIT.get(parts[1], parts[1]))
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def test_every_unit_has_a_layer():
    assert {_unit(p) for p in MODULES} <= set(LAYERS), "add new packages to LAYERS"


@pytest.mark.parametrize("module_path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(module_path: Path):
    unit = _unit(module_path)
    upward = sorted(
        target for target in _imports(module_path)
        if target != unit and LAYERS.get(target, 99) >= LAYERS[unit]
    )
    assert upward == [], f"{module_path.relative_to(SRC)} imports {upward} (same or higher layer)"


def test_scoring_imports_nothing_but_types():
    for path in (SRC / "scoring").rglob("*.py"):
        assert _imports(path) <= {"types", "scoring"}, path
