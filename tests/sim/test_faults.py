"""Each fault of POST /_sim/fault, seen happening over a real socket."""

from __future__ import annotations

import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed

from tests.sim.conftest import Ws, control, rest


def test_drop_connections(sim, ws):
    c = ws()
    c.call("public/subscribe", {"channels": ["deribit_price_index.btc_usd"]})
    assert control(sim, "fault", {"kind": "drop_connections"})["dropped"] == 1
    with pytest.raises(ConnectionClosed):
        c.wait(lambda m: False, timeout=10)
    assert Ws(sim).call("public/test")["result"]  # new connections are fine


def test_skip_book_change_breaks_the_chain_once(sim, ws):
    c = ws()
    ch = "book.BTC-PERPETUAL.100ms"
    c.call("public/subscribe", {"channels": [ch]})
    before = c.notifications(ch, 3)
    control(sim, "fault", {"kind": "skip_book_change", "instrument": "BTC-PERPETUAL"})
    after = c.notifications(ch, 4)
    seq = before + after
    breaks = [i for i in range(1, len(seq)) if seq[i]["prev_change_id"] != seq[i - 1]["change_id"]]
    assert len(breaks) == 1
    assert control(sim, "stats")["notifications"]["suppressed"]["book:BTC-PERPETUAL"] == 1


def test_skip_trades_counted_in_truth_but_not_sent(make_sim):
    sim = make_sim(trade_rate=300, currencies=["ETH"])
    c = Ws(sim)
    ch = "trades.ETH-PERPETUAL.100ms"
    c.call("public/subscribe", {"channels": [ch]})
    control(sim, "fault", {"kind": "skip_trades", "instrument": "ETH-PERPETUAL", "count": 3})
    got = []
    while len(got) < 10:
        got.extend(c.notifications(ch, 1)[0])
    seqs = [t["trade_seq"] for t in got]
    truth = control(sim, "trades", instrument="ETH-PERPETUAL")["trades"]
    truth_seqs = [t["trade_seq"] for t in truth]
    missing = sorted(set(truth_seqs[: truth_seqs.index(seqs[-1]) + 1]) - set(seqs))
    assert len(missing) == 3 and missing == truth_seqs[:3]
    assert control(sim, "stats")["notifications"]["suppressed"]["trades:ETH-PERPETUAL"] == 3


def test_malformed_frame(sim, ws):
    c = ws()
    c.call("public/test")
    control(sim, "fault", {"kind": "malformed_frame"})
    raw = c.conn.recv(timeout=10)
    with pytest.raises(ValueError):
        import json
        json.loads(raw)
    assert c.call("public/test")["result"]  # the connection is still open


def test_stall_holds_everything_then_resumes(make_sim):
    sim = make_sim(rate=200)
    c = Ws(sim)
    ch = "deribit_price_index.btc_usd"
    c.call("public/subscribe", {"channels": [ch]})
    c.notifications(ch, 1)
    control(sim, "fault", {"kind": "stall", "seconds": 1.5})
    time.sleep(0.2)
    c.notes.clear()
    with pytest.raises(TimeoutError):
        c.wait(lambda m: True, timeout=0.8)  # silence
    assert c.notifications(ch, 1, timeout=10)  # and then it flows again


def test_expire_now(sim, ws):
    c = ws()
    name = rest(sim, "get_instruments", currency="ETH", kind="option").json()["result"][0]["instrument_name"]
    c.call("public/subscribe", {"channels": ["instrument.state.any.ETH"]})
    control(sim, "fault", {"kind": "expire", "instrument": name})
    states = c.notifications("instrument.state.any.ETH", 2)
    assert [(s["instrument_name"], s["state"]) for s in states] == [(name, "closed"), (name, "settled")]
    live = {i["instrument_name"] for i in rest(sim, "get_instruments", currency="ETH").json()["result"]}
    assert name not in live
    expired = {i["instrument_name"] for i in rest(sim, "get_instruments", currency="ETH", expired="true").json()["result"]}
    assert name in expired
    t = rest(sim, "ticker", instrument_name=name).json()["result"]
    assert t["state"] == "closed" and t["estimated_delivery_price"] == "expired"


def test_list_new_expiry(sim, ws):
    c = ws()
    c.call("public/subscribe", {"channels": ["instrument.state.option.BTC"]})
    before = {i["instrument_name"] for i in rest(sim, "get_instruments", currency="BTC").json()["result"]}
    listed = control(sim, "fault", {"kind": "list", "currency": "BTC"})["listed"]
    assert len(listed) >= 10 and not set(listed) & before
    after = {i["instrument_name"] for i in rest(sim, "get_instruments", currency="BTC").json()["result"]}
    assert set(listed) <= after
    created = [n for n in c.notifications("instrument.state.option.BTC", 2 * len(listed)) if n["state"] == "created"]
    assert {n["instrument_name"] for n in created} == set(listed)


def test_rest_errors(sim):
    control(sim, "fault", {"kind": "rest_errors", "count": 2})
    first, second, third = (rest(sim, "get_time") for _ in range(3))
    assert first.status_code == 429 and first.json()["error"]["code"] == 10028
    assert second.status_code >= 500
    assert third.status_code == 200


def test_unknown_fault_is_400(sim):
    r = requests.post(f"{sim.urls['control']}/fault", json={"kind": "meteor"}, timeout=5)
    assert r.status_code == 400


def test_rest_errors_for_one_instrument_with_a_chosen_code(sim):
    control(sim, "fault", {"kind": "rest_errors", "count": 2, "instrument": "BTC-PERPETUAL", "code": 13028})
    assert rest(sim, "get_time").status_code == 200
    assert rest(sim, "ticker", instrument_name="ETH-PERPETUAL").status_code == 200
    for _ in range(2):
        r = rest(sim, "ticker", instrument_name="BTC-PERPETUAL")
        assert r.status_code == 503 and r.json()["error"]["code"] == 13028
    assert rest(sim, "ticker", instrument_name="BTC-PERPETUAL").status_code == 200
    bad = requests.post(f"{sim.urls['control']}/fault", json={"kind": "rest_errors", "code": 1}, timeout=5)
    assert bad.status_code == 400


def test_clock_speed_change_and_pause(make_sim):
    s = make_sim(speed=3600, currencies=["BTC"], trade_rate=200)
    time.sleep(0.3)
    paused = control(s, "clock", {"speed": 0})
    assert paused["now"] > 0 and paused["speed"] == 0
    time.sleep(0.3)  # the next tick still fills in the trades up to the pause
    trades_then = control(s, "stats")["trades"]["total"]
    time.sleep(0.3)
    st = control(s, "stats")
    assert st["clock"]["now"] == paused["now"] and st["clock"]["speed"] == 0
    assert st["trades"]["total"] == trades_then  # no trades while the clock stands still
    control(s, "clock", {"speed": 1})
    time.sleep(0.05)
    assert control(s, "stats")["clock"]["now"] > paused["now"]
    r = requests.post(f"{s.urls['control']}/clock", json={"speed": -1}, timeout=5)
    assert r.status_code == 400
