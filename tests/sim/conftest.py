"""Simulator fixtures: an in-process simulator on 127.0.0.1 (a free port), and small clients."""

from __future__ import annotations

import itertools
import json
import time

import pytest
import requests
from websockets.sync.client import connect

from collector.sim.runner import SimThread
from collector.sim.server import SimConfig


def start_sim(**kw) -> SimThread:
    kw.setdefault("seed", 7)
    return SimThread(SimConfig(**kw)).start()


@pytest.fixture
def sim():
    s = start_sim()
    yield s
    s.stop()


@pytest.fixture
def make_sim():
    started = []

    def make(**kw) -> SimThread:
        s = start_sim(**kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def rest(sim: SimThread, method: str, **params) -> requests.Response:
    return requests.get(f"{sim.urls['rest']}/public/{method}", params=params, timeout=10)


def control(sim: SimThread, path: str, body: dict | None = None, **params) -> dict:
    url = f"{sim.urls['control']}/{path}"
    if body is not None:
        r = requests.post(url, json=body, timeout=10)
    else:
        r = requests.get(url, params=params, timeout=10)
    r.raise_for_status()
    return r.json()


class Ws:
    """A WebSocket JSON-RPC client that keeps notifications aside while waiting for responses."""

    def __init__(self, sim: SimThread) -> None:
        self._cm = connect(sim.urls["ws"], max_size=None)
        self.conn = self._cm.__enter__()
        self.ids = itertools.count(1)
        self.notes: list[dict] = []

    def call(self, method: str, params: dict | None = None, timeout: float = 10) -> dict:
        req_id = next(self.ids)
        self.conn.send(json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params or {}}))
        return self.wait(lambda m: m.get("id") == req_id, timeout)

    def recv(self, timeout: float = 10) -> dict:
        return json.loads(self.conn.recv(timeout=timeout))

    def wait(self, pred, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if pred(msg):
                return msg
            if msg.get("method") == "subscription":
                self.notes.append(msg)

    def notifications(self, channel: str, count: int, timeout: float = 20) -> list:
        """The next ``count`` data payloads of ``channel`` (including any already kept aside)."""
        out = [m["params"]["data"] for m in self.notes if m["params"]["channel"] == channel]
        self.notes = [m for m in self.notes if m["params"]["channel"] != channel]
        deadline = time.monotonic() + timeout
        while len(out) < count:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if msg.get("method") == "subscription" and msg["params"]["channel"] == channel:
                out.append(msg["params"]["data"])
            elif msg.get("method") == "subscription":
                self.notes.append(msg)
        return out

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


@pytest.fixture
def ws(sim):
    clients = []

    def make(target=None) -> Ws:
        c = Ws(target or sim)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
