"""Deribit's rules, each seen over a real socket."""

from __future__ import annotations

import json
import socket

import pytest
import requests
from websockets.exceptions import ConnectionClosed

from collector.sim.rules import CreditLimits
from tests.sim.conftest import Ws, control, rest


def test_raw_channels_refused_and_whole_batch_rejected(sim, ws):
    c = ws()
    resp = c.call("public/subscribe", {"channels": ["deribit_price_index.btc_usd", "trades.BTC-PERPETUAL.raw"]})
    assert resp["error"]["code"] == 13778
    assert resp["error"]["message"] == "raw_subscriptions_not_available_for_unauthorized"
    assert c.call("public/unsubscribe", {"channels": ["deribit_price_index.btc_usd"]})["result"] == []
    assert control(sim, "stats")["requests"]["refused"]["13778"] == 1


def test_unknown_channels_are_left_out_of_the_result(sim, ws):
    c = ws()
    resp = c.call("public/subscribe", {"channels": ["ticker.BTC-NOPE.100ms", "quote.BTC-PERPETUAL", "bogus"]})
    assert resp["result"] == ["quote.BTC-PERPETUAL"]


def test_frame_over_32kb_refused(sim, ws):
    c = ws()
    channels = [f"ticker.BTC-PERPETUAL.100ms{'x' * 40}{i}" for i in range(800)]
    resp = c.call("public/subscribe", {"channels": channels})
    assert resp["error"]["code"] == -32600
    assert c.call("public/test")["result"]["version"]  # the connection stays usable


def test_credits_exhausted_gives_10028_then_close(make_sim):
    sim = make_sim(credits=CreditLimits(cost=500, capacity=5000, refill_per_s=1))
    c = Ws(sim)
    codes = []
    with pytest.raises(ConnectionClosed):
        for i in range(20):
            resp = c.call("public/get_time")
            codes.append(resp.get("error", {}).get("code"))
    assert codes[:10] == [None] * 10 and codes[10] == 10028
    assert control(sim, "stats")["requests"]["refused"]["10028"] == 1


def test_http_credits_exhausted_gives_10028(make_sim):
    sim = make_sim(credits=CreditLimits(cost=500, capacity=1500, refill_per_s=1))
    statuses = [rest(sim, "get_time").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert rest(sim, "get_time").json()["error"]["code"] == 10028


def test_33rd_connection_refused_with_429(make_sim):
    sim = make_sim()
    clients = [Ws(sim) for _ in range(32)]
    try:
        with pytest.raises(Exception) as info:
            Ws(sim)
        assert "429" in str(info.value)
        r = requests.get(f"{sim.urls['rest']}/public/get_time", timeout=5)
        assert r.status_code == 429
        assert control(sim, "stats")["connections"]["refused_429"] == 1
    finally:
        for c in clients:
            c.close()
    assert rest(sim, "get_time").status_code == 200  # freed again


def test_unanswered_test_request_closes_connection(make_sim):
    sim = make_sim(min_heartbeat=0.2)
    c = Ws(sim)
    assert c.call("public/set_heartbeat", {"interval": 0.3})["result"] == "ok"
    assert c.wait(lambda m: m.get("method") == "heartbeat") == {
        "jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
    with pytest.raises(ConnectionClosed):
        c.wait(lambda m: False, timeout=10)
    assert control(sim, "stats")["events"]["heartbeat_closed"] == 1


def test_answered_test_requests_keep_connection(make_sim):
    sim = make_sim(min_heartbeat=0.1)
    c = Ws(sim)
    c.call("public/set_heartbeat", {"interval": 0.15})
    for _ in range(5):
        c.wait(lambda m: m.get("method") == "heartbeat")
        assert c.call("public/test")["result"]["version"]
    assert c.call("public/get_time")["result"] > 0
    assert control(sim, "stats")["events"].get("heartbeat_closed", 0) == 0


def test_heartbeat_below_minimum_refused(sim, ws):
    resp = ws().call("public/set_heartbeat", {"interval": 5})
    assert resp["error"]["code"] == -32602 and resp["error"]["data"]["param"] == "interval"


def test_error_codes(sim, ws):
    c = ws()
    assert c.call("public/no_such_method")["error"]["code"] == -32601
    assert c.call("private/get_positions")["error"]["code"] == 13009
    err = c.call("public/ticker", {"instrument_name": "BTC-NOPE"})["error"]
    assert err == {"message": "Invalid params", "code": -32602,
                   "data": {"reason": "instrument not found", "param": "instrument_name"}}
    err = c.call("public/get_book_summary_by_currency", {})["error"]   # get_instruments needs none
    assert err["code"] == -32602 and err["data"]["param"] == "currency"
    c.conn.send("{not json")
    msg = c.recv()
    assert msg["error"]["code"] == 11050 and "id" not in msg
    assert rest(sim, "no_such_method").json()["error"]["code"] == -32601
    assert rest(sim, "get_order_book", instrument_name="BTC-PERPETUAL", depth=7).json()["error"]["code"] == -32602
    assert rest(sim, "subscribe", channels="x").json()["error"]["code"] == -32601  # WebSocket only


def test_http_post_json_rpc_body(sim):
    body = {"jsonrpc": "2.0", "id": 5, "method": "public/get_index_price", "params": {"index_name": "eth_usd"}}
    r = requests.post(f"{sim.urls['rest']}/public/get_index_price", json=body, timeout=5)
    assert r.json()["id"] == 5 and r.json()["result"]["index_price"] > 0


def test_raw_socket_keepalive_http(sim):
    host, port = "127.0.0.1", sim.server.port
    with socket.create_connection((host, port), timeout=5) as s:
        for _ in range(2):
            s.sendall(b"GET /api/v2/public/get_time HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            hdr, _, rest_ = head.partition(b"\r\n\r\n")
            length = int([h for h in hdr.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
            while len(rest_) < length:
                rest_ += s.recv(4096)
            assert json.loads(rest_[:length])["result"] > 0
