"""The scoring package imports only the standard library, seqscore.types and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import seqscore.scoring

PACKAGE = Path(seqscore.scoring.__file__).parent
#: the rules stay pure: no file, clock, environment or process access
IMPURE = {"os", "pathlib", "tomllib", "time", "io", "sys", "subprocess", "random"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_scoring_imports_only_stdlib_and_types() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 4
    for module in modules:
        for name in imported(module):
            top = name.split(".")[0]
            allowed = (top in sys.stdlib_module_names or top == "__future__"
                       or name == "seqscore.types" or name.startswith("seqscore.scoring"))
            assert allowed, f"{module.name} imports {name}"


def test_score_module_is_pure() -> None:
    names = imported(PACKAGE / "score.py")
    assert not {n.split(".")[0] for n in names} & IMPURE
    assert not any(n.startswith("seqscore.") and n.split(".")[1] not in {"types", "scoring"}
                   for n in names)
