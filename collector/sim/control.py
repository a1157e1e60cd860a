"""The ``/_sim`` control API: ground truth (stats, trades) and fault injection.

GET  /_sim/stats                      counters: notifications per channel, trades per instrument, ...
GET  /_sim/trades?instrument=NAME     every trade generated for NAME (or ?currency=CUR), oldest first
POST /_sim/fault  {"kind": ...}       drop_connections | skip_book_change | skip_trades |
                                      malformed_frame | stall | expire | list | rest_errors
                                      (rest_errors: {"count": N, "instrument"?: NAME, "code"?: 10028|13028})
POST /_sim/clock  {"speed": X}        change the simulated clock's speed from now on (0 pauses it)
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from collector.sim.hub import ws_frame

MALFORMED = ws_frame(b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERP')


def handle(srv, method: str, path: str, query: dict, body: bytes) -> tuple[int, dict]:
    if path in ("/_sim", "/_sim/"):
        return 200, {"endpoints": ["/_sim/stats", "/_sim/trades", "/_sim/fault", "/_sim/clock"], **srv.urls()}
    if path == "/_sim/stats" and method == "GET":
        return 200, stats(srv)
    if path == "/_sim/trades" and method == "GET":
        return trades(srv, query)
    if path in ("/_sim/fault", "/_sim/clock") and method == "POST":
        try:
            spec = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            return 400, {"error": "body must be a JSON object"}
        if not isinstance(spec, dict):
            return 400, {"error": "body must be a JSON object"}
        if path == "/_sim/clock":
            return clock(srv, spec)
        return fault(srv, spec)
    return 404, {"error": f"no such control endpoint: {method} {path}"}


def stats(srv) -> dict:
    m, hub = srv.market, srv.hub
    insts = {}
    for pool in (m.expired, m.live):
        for inst in pool.values():
            if inst.total:
                insts[inst.name] = {"trades": inst.total, "last_trade_seq": inst.seq,
                                    "first_trade_seq": inst.seq0 + 1, "state": inst.state}
    ws_open = sum(1 for c in srv.conns if c.session is not None and not c.closed)
    return {
        "clock": {"now": srv.clock.now_ms(), "market_now": m.now, "start": srv.clock.start_ms,
                  "speed": srv.clock.speed},
        "notifications": {"total": sum(hub.sent.values()), "frames_sent": hub.frames,
                          "by_channel": dict(hub.sent), "suppressed": dict(hub.suppressed),
                          "active_channels": len(hub.chans)},
        "trades": {"total": sum(i["trades"] for i in insts.values()),
                   "by_currency": {c: len(d) for c, d in m.cur_trades.items()}},
        "instruments": insts,
        "live_instruments": len(m.live),
        "requests": {"served": srv.requests_served, "refused": dict(srv.refused)},
        "connections": {"open": len(srv.conns), "ws_open": ws_open,
                        "opened": srv.stats["connections_opened"], "closed": srv.stats["connections_closed"],
                        "ws_opened": srv.stats["ws_opened"], "ws_closed": srv.stats["ws_closed"],
                        "refused_429": srv.stats["connections_refused_429"]},
        "events": {k: v for k, v in srv.stats.items() if not k.startswith("connections_")},
    }


def trades(srv, query: dict) -> tuple[int, dict]:
    m = srv.market
    if "instrument" in query:
        inst = m.find(query["instrument"])
        if inst is None:
            return 404, {"error": "unknown instrument"}
        return 200, {"trades": list(inst.trades), "complete": len(inst.trades) == inst.total}
    if "currency" in query:
        cur = query["currency"].upper()
        if cur not in m.cur_trades:
            return 404, {"error": "unknown currency"}
        ts = list(m.cur_trades[cur])
        total = sum(i.total for pool in (m.live, m.expired) for i in pool.values() if i.cur == cur)
        return 200, {"trades": ts, "complete": len(ts) == total}
    return 400, {"error": "give ?instrument=NAME or ?currency=CUR"}


def clock(srv, spec: dict) -> tuple[int, dict]:
    try:
        raw: Any = spec.get("speed")  # None (missing) raises TypeError
        speed = float(raw)
    except (TypeError, ValueError):
        return 400, {"error": "speed must be a number >= 0"}
    if not speed >= 0:
        return 400, {"error": "speed must be a number >= 0"}
    return 200, {"ok": True, "now": srv.clock.set_speed(speed), "speed": speed}


def fault(srv, spec: dict) -> tuple[int, dict]:
    kind = spec.get("kind")
    m = srv.market
    srv.stats["fault_" + str(kind)] += 1
    if kind == "drop_connections":
        victims = [c for c in srv.conns if c.session is not None]
        for c in victims:
            c.abort()
        return 200, {"ok": True, "dropped": len(victims)}
    if kind in ("skip_book_change", "skip_trades", "expire"):
        inst = m.live.get(spec.get("instrument", ""))
        if inst is None:
            return 404, {"error": "unknown or expired instrument"}
        if kind == "skip_book_change":
            inst.skip_book += int(spec.get("count", 1))
        elif kind == "skip_trades":
            inst.skip_trades += int(spec.get("count", 1))
        else:
            m.expire(inst.name, m.now)
        return 200, {"ok": True, "instrument": inst.name}
    if kind == "malformed_frame":
        n = 0
        for c in srv.conns:
            if c.session is not None and not c.closed:
                c.send(MALFORMED)
                n += 1
        return 200, {"ok": True, "sent": n}
    if kind == "stall":
        seconds = float(spec.get("seconds", 5))
        srv.stall_until = time.monotonic() + seconds
        return 200, {"ok": True, "seconds": seconds}
    if kind == "list":
        cur = str(spec.get("currency", "")).upper()
        if cur not in m.cur:
            return 404, {"error": "unknown currency"}
        return 200, {"ok": True, "listed": m.list_expiry(cur)}
    if kind == "rest_errors":
        code = spec.get("code")
        if code not in (None, 10028, 13028):
            return 400, {"error": "code must be 10028 or 13028"}
        count, name = int(spec.get("count", 1)), spec.get("instrument")
        if name is None:
            srv.rest_errors += count
            srv.rest_error_code = code
            return 200, {"ok": True, "pending": srv.rest_errors}
        if m.find(str(name)) is None:
            return 404, {"error": "unknown instrument"}
        left, _ = srv.instrument_errors.get(str(name), (0, None))
        srv.instrument_errors[str(name)] = (left + count, code)
        return 200, {"ok": True, "pending": left + count, "instrument": name}
    srv.stats["fault_" + str(kind)] -= 1
    return 400, {"error": f"unknown fault kind {kind!r}"}
