"""Fixtures for the Deribit tests: the real/documented example messages in tests/data/deribit/ (each with its
source beside it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "deribit"


class Examples:
    """Loads ``NAME.json``; ``data(NAME)`` returns the payload a parser sees, whatever the file's shape:
    a docs channel sample (``data_examples[i].data``), a request/response pair (``response.result``),
    a wire notification (``params.data``) or a bare response envelope (``result``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def raw(self, name: str) -> bytes:
        return (self.root / f"{name}.json").read_bytes()

    def load(self, name: str) -> Any:
        return json.loads(self.raw(name))

    def envelope(self, name: str) -> Any:
        doc = self.load(name)
        return doc["response"] if isinstance(doc, dict) and "response" in doc else doc

    def data(self, name: str, index: int = 0) -> Any:
        doc = self.load(name)
        if "data_examples" in doc:
            return doc["data_examples"][index]["data"]
        if "response" in doc:
            return doc["response"]["result"]
        if "params" in doc:
            return doc["params"]["data"]
        return doc["result"]

    def notification(self, name: str, index: int = 0) -> dict:
        """The wire form of a docs channel sample (the AsyncAPI examples hold only ``data``)."""
        doc = self.load(name)
        if "params" in doc:
            return doc
        channel = doc["subscribe_request"]["params"]["channels"][0]
        return {"jsonrpc": "2.0", "method": "subscription",
                "params": {"channel": channel, "data": doc["data_examples"][index]["data"]}}


@pytest.fixture(scope="session")
def examples() -> Examples:
    return Examples(EXAMPLES)
