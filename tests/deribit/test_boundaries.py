"""The exchange side knows no database: collector.deribit never imports store, jobs or sim."""

from __future__ import annotations

import ast
from pathlib import Path

import collector.deribit

FORBIDDEN = ("collector.store", "collector.jobs", "collector.sim", "collector.cli")
PURE = ("frames", "fields", "instruments", "parse", "parse_rest", "sequence", "protocol", "wsframes")
IMPURE_MODULES = {"logging", "time", "socket", "requests", "threading", "asyncio", "websockets", "random", "os"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_upward_or_database_imports():
    pkg = Path(collector.deribit.__file__).parent
    for path in pkg.glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def test_pure_modules_do_no_io():
    pkg = Path(collector.deribit.__file__).parent
    for mod in PURE:
        bad = {n.split(".")[0] for n in _imports(pkg / f"{mod}.py")} & IMPURE_MODULES
        assert not bad, f"{mod}.py imports {bad}"
