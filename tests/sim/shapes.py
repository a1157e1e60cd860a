"""Compare a simulator answer with a Deribit example: same keys (the example's keys must all be
present), same JSON types (int and float are both 'number'; null is allowed where Deribit sends null)."""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "deribit"  # copied from shared/, sources beside

# Keys Deribit itself sends as null in some states (no trades in 24 h, an empty book side, ...).
NULLABLE = {"last_price", "last", "high", "low", "price_change", "mid_price", "bid_price", "ask_price",
            "volume", "volume_usd", "baseAddress"}


def example(name: str):
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def jtype(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def mismatches(expected, actual, path: str = "$", skip: frozenset = frozenset()) -> list[str]:
    out: list[str] = []
    te, ta = jtype(expected), jtype(actual)
    key = path.rsplit(".", 1)[-1]
    if te == "null" or (ta == "null" and key in NULLABLE):
        return out
    if te != ta:
        return [f"{path}: expected {te}, got {ta}"]
    if te == "object":
        for k, v in expected.items():
            if k in skip:
                continue
            if k not in actual:
                out.append(f"{path}.{k}: missing")
            else:
                out.extend(mismatches(v, actual[k], f"{path}.{k}", skip))
    elif te == "array" and expected and actual and isinstance(expected[0], list):
        for a in actual[:50]:  # tuples such as ["new", price, amount]: position by position
            if jtype(a) != "array" or len(a) != len(expected[0]):
                out.append(f"{path}[]: expected a {len(expected[0])}-tuple, got {a!r}")
                continue
            for i, (e, x) in enumerate(zip(expected[0], a)):
                out.extend(mismatches(e, x, f"{path}[][{i}]", skip))
    elif te == "array" and expected and actual:
        for a in actual[:50]:
            out.extend(mismatches(expected[0], a, f"{path}[]", skip))
    return out
