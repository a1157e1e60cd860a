"""The wheel carries every package of the source tree (a package missing from pyproject.toml's list is
missing on the NAS, and only there)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_in_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "collector").rglob("__init__.py")}
    assert found - listed == set()
