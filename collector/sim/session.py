"""One WebSocket JSON-RPC session: request dispatch, credits, subscriptions, heartbeat.

Transport-agnostic: it is given a ``conn`` with ``send(frame)`` / ``close(code, reason)`` / ``channels``
and the Server for shared state; it never touches sockets itself.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from websockets.typing import BytesLike

from collector.sim import methods
from collector.sim.channels import RawRefused
from collector.sim.hub import ws_frame
from collector.sim.rules import MAX_FRAME, CreditBucket, RpcError, invalid

TEST_REQUEST = ws_frame(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')


def now_us() -> int:
    return time.time_ns() // 1000


def envelope(req_id, us_in: int, testnet: bool, result=None, error: RpcError | None = None) -> bytes:
    msg: dict = {"jsonrpc": "2.0"}
    if req_id is not None:
        msg["id"] = req_id
    if error is not None:
        msg["error"] = error.body()
    else:
        msg["result"] = result
    us_out = now_us()
    msg.update({"usIn": us_in, "usOut": us_out, "usDiff": us_out - us_in, "testnet": testnet})
    return orjson.dumps(msg)


class Session:
    def __init__(self, server, conn) -> None:
        self.server = server
        self.conn = conn
        self.credits = CreditBucket(server.credit_limits, time.monotonic())
        self.hb_interval = 0.0
        self.hb_pending = False
        self.hb_handle = None
        self.later: list[bytes] = []   # frames that must follow the response (book snapshots)

    def on_text(self, text: BytesLike) -> None:
        us_in = now_us()
        srv = self.server
        req_id = None
        try:
            try:
                req = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise RpcError(11050) from None
            if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                raise RpcError(11050)
            req_id = req.get("id")
            if len(text) > MAX_FRAME:
                raise RpcError(-32600)
            if req_id is None:
                raise RpcError(11050)
            if not self.credits.take(time.monotonic()):
                srv.count_error(10028)
                self.conn.send(ws_frame(envelope(req_id, us_in, srv.testnet, error=RpcError(10028))))
                self.conn.close(1008, "too_many_requests")
                return
            params = req.get("params") or {}
            if not isinstance(params, dict):
                raise RpcError(11050)
            result = self.dispatch(req["method"], params)
        except RpcError as err:
            srv.count_error(err.code)
            self.conn.send(ws_frame(envelope(req_id, us_in, srv.testnet, error=err)))
            return
        srv.requests_served += 1
        self.conn.send(ws_frame(envelope(req_id, us_in, srv.testnet, result=result)))
        for frame in self.later:
            self.conn.send(frame)
        self.later = []

    def dispatch(self, method: str, params: dict):
        hub = self.server.hub
        if method == "public/subscribe":
            names = _channels(params)
            try:
                accepted, self.later = hub.subscribe(self.conn, names)
            except RawRefused:
                raise RpcError(13778) from None
            return accepted
        if method == "public/unsubscribe":
            return hub.unsubscribe(self.conn, _channels(params))
        if method == "public/unsubscribe_all":
            hub.unsubscribe(self.conn, list(self.conn.channels))
            return "ok"
        if method == "public/set_heartbeat":
            return self.set_heartbeat(params)
        if method == "public/disable_heartbeat":
            self.stop_heartbeat()
            return "ok"
        if method == "public/test":
            self.hb_pending = False
        return methods.call(self.server.market, method, params)

    # ---- heartbeat -----------------------------------------------------------------------------
    def set_heartbeat(self, params: dict) -> str:
        try:
            raw: Any = params.get("interval")  # None (missing) raises TypeError
            interval = float(raw)
        except (TypeError, ValueError):
            raise invalid("interval", "must be present") from None
        if interval < self.server.min_heartbeat:
            raise invalid("interval", f"must be at least {self.server.min_heartbeat:g}")
        self.stop_heartbeat()
        self.hb_interval = interval
        self.hb_handle = self.server.loop.call_later(interval, self._beat)
        return "ok"

    def stop_heartbeat(self) -> None:
        if self.hb_handle is not None:
            self.hb_handle.cancel()
        self.hb_handle = None
        self.hb_interval = 0.0
        self.hb_pending = False

    def _beat(self) -> None:
        self.hb_handle = None
        if self.conn.closed:
            return
        if not self.server.stalled():
            if self.hb_pending:
                self.server.stats["heartbeat_closed"] += 1
                self.conn.close(1000, "heartbeat test_request not answered")
                return
            self.hb_pending = True
            self.conn.send(TEST_REQUEST)
        self.hb_handle = self.server.loop.call_later(self.hb_interval, self._beat)


def _channels(params: dict) -> list[str]:
    names = params.get("channels")
    if not names:
        raise invalid("channels", "must be present")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise invalid("channels", "must be an array of strings")
    return names
