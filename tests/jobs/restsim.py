"""Helpers for the REST job tests: Settings aimed at a simulator, its control API, its ground truth."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import requests

from collector.config import Settings
from collector.sim.runner import SimThread
from collector.sim.server import SimConfig

# a Tuesday morning after the 08:00 UTC expiry: a 3 h window from here crosses no expiry
START_MS = int(datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc).timestamp() * 1000)
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
# fast retries so the fault tests take seconds (the production defaults are the client's own)
FAST = {"backoff_base_s": 0.05, "backoff_cap_s": 0.5}


def start_sim(**kw) -> SimThread:
    kw.setdefault("seed", 5)
    kw.setdefault("start_ms", START_MS)
    return SimThread(SimConfig(**kw)).start()


def settings_for(sim: SimThread, dsn: str, spool: Path, **kw) -> Settings:
    return Settings.load(env={}, database_url=dsn, rest_url=sim.urls["rest"], spool_dir=str(spool), **kw)


def control(sim: SimThread, path: str, body: dict | None = None, **params) -> dict:
    url = f"{sim.urls['control']}/{path}"
    r = requests.post(url, json=body, timeout=10) if body is not None else requests.get(url, params=params, timeout=10)
    r.raise_for_status()
    return r.json()


def run_until(sim: SimThread, sim_ms: int, timeout: float = 30.0) -> None:
    """Wait (real time) until the simulated clock reaches ``sim_ms``."""
    deadline = time.monotonic() + timeout
    while control(sim, "stats")["clock"]["now"] < sim_ms:
        assert time.monotonic() < deadline, "the simulator's clock did not get there"
        time.sleep(0.05)


def pause(sim: SimThread) -> int:
    """Stop the simulated clock; returns the simulated time it stopped at (ms)."""
    time.sleep(0.25)  # let the market tick up to the moment of the pause
    now = control(sim, "clock", {"speed": 0})["now"]
    time.sleep(0.25)  # the next tick fills in the trades up to the pause
    return now


def refused_10028(sim: SimThread) -> int:
    return control(sim, "stats")["requests"]["refused"].get("10028", 0)


def live(sim: SimThread, kind: str | None = None) -> list[dict]:
    """The simulator's live instruments (name, kind, currency, perpetual?, open interest)."""
    def read():
        return [{"name": i.name, "kind": i.kind, "cur": i.cur, "perp": i.perp, "oi": i.oi}
                for i in sim.server.market.live.values() if kind is None or i.kind == kind]
    return sim.call(read)


def trades_of(sim: SimThread, name: str) -> list[dict]:
    got = control(sim, "trades", instrument=name)
    assert got["complete"], "the simulator's trade history is truncated"
    return got["trades"]


def truth_candles(trades: list[dict], until_ms: int, option: bool = False) -> list[tuple]:
    """1-min bars of ``trades`` from the first traded minute up to (excluding) ``until_ms``; minutes
    without trades repeat the previous close with zero volume: (ms, open, high, low, close, volume, cost)."""
    bars: dict[int, list] = {}
    for t in trades:
        if t["timestamp"] >= until_ms:
            break
        key = t["timestamp"] - t["timestamp"] % MINUTE_MS
        p, a = t["price"], t["amount"]
        vol, cost = (a, a * p) if option else (a / p, a)
        b = bars.setdefault(key, [p, p, p, p, 0.0, 0.0])
        b[1], b[2], b[3] = max(b[1], p), min(b[2], p), p
        b[4] += vol
        b[5] += cost
    if not bars:
        return []
    out, prev, tick = [], None, min(bars)
    while tick < until_ms:
        b = bars.get(tick) or [prev, prev, prev, prev, 0.0, 0.0]
        out.append((tick, *b))
        prev = b[3]
        tick += MINUTE_MS
    return out


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)
