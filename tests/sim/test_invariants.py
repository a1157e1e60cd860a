"""Invariants of the simulated market, checked through the public API and the ground truth."""

from __future__ import annotations

import datetime as dt
import math
import time

from tests.sim.conftest import Ws, control, rest


def test_trade_seq_contiguous_in_truth_and_stream(make_sim):
    sim = make_sim(trade_rate=400, currencies=["BTC"])
    c = Ws(sim)
    ch = "trades.BTC-PERPETUAL.100ms"
    c.call("public/subscribe", {"channels": [ch, "trades.any.BTC.100ms"]})
    got = []
    while len(got) < 20:
        got.extend(c.notifications(ch, 1)[0])
    seqs = [t["trade_seq"] for t in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    time.sleep(0.3)
    stats = control(sim, "stats")["instruments"]
    for name in list(stats)[:30]:
        truth = [t["trade_seq"] for t in control(sim, "trades", instrument=name)["trades"]]
        row = stats[name]
        assert truth[0] == row["first_trade_seq"]
        assert truth == list(range(truth[0], truth[0] + len(truth)))
        assert truth[-1] <= control(sim, "stats")["instruments"][name]["last_trade_seq"]
    ids = [t["trade_id"] for t in control(sim, "trades", currency="BTC")["trades"]]
    assert len(ids) == len(set(ids)) and all(i.isdigit() for i in ids)
    rest_trades = rest(sim, "get_last_trades_by_instrument", instrument_name="BTC-PERPETUAL", count=5,
                       sorting="asc", start_seq=seqs[0]).json()["result"]["trades"]
    assert [t["trade_seq"] for t in rest_trades] == seqs[:5]


def test_eth_trade_ids_are_prefixed(make_sim):
    sim = make_sim(trade_rate=200, currencies=["ETH"])
    deadline = time.monotonic() + 20
    while not control(sim, "trades", currency="ETH")["trades"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(t["trade_id"].startswith("ETH-") for t in control(sim, "trades", currency="ETH")["trades"])


def test_book_change_ids_chain(sim):
    c = Ws(sim)
    chans = ["book.BTC-PERPETUAL.100ms", "book.ETH-PERPETUAL.agg2"]
    c.call("public/subscribe", {"channels": chans})
    for ch in chans:
        msgs = c.notifications(ch, 12)
        assert msgs[0]["type"] == "snapshot"
        for prev, cur in zip(msgs, msgs[1:]):
            assert cur["type"] == "change" and cur["prev_change_id"] == prev["change_id"]
            assert cur["change_id"] > prev["change_id"]
    # a second subscriber gets a snapshot that chains with the shared stream
    late = Ws(sim)
    late.call("public/subscribe", {"channels": chans[:1]})
    snap, nxt = late.notifications(chans[0], 2)
    assert snap["type"] == "snapshot" and nxt["prev_change_id"] == snap["change_id"]
    late.close()
    c.close()


def test_book_levels_applied_reproduce_rest_book(make_sim):
    sim = make_sim(rate=50)
    c = Ws(sim)
    ch = "book.ETH-PERPETUAL.100ms"
    c.call("public/subscribe", {"channels": [ch]})
    book: dict = {"bids": {}, "asks": {}}
    for msg in c.notifications(ch, 10):
        for side in ("bids", "asks"):
            for action, price, amount in msg[side]:
                if action == "delete":
                    book[side].pop(price, None)
                else:
                    book[side][price] = amount
    best_bid, best_ask = max(book["bids"]), min(book["asks"])
    assert best_bid < best_ask


def _aggregate(trades, option: bool):
    bars: dict = {}
    for t in trades:
        key = t["timestamp"] - t["timestamp"] % 60_000
        vol, cost = (t["amount"], t["amount"] * t["price"]) if option else (t["amount"] / t["price"], t["amount"])
        b = bars.setdefault(key, [t["price"], t["price"], t["price"], t["price"], 0.0, 0.0])
        b[1], b[2], b[3] = max(b[1], t["price"]), min(b[2], t["price"]), t["price"]
        b[4] += vol
        b[5] += cost
    return bars


def test_chart_equals_aggregate_of_truth(make_sim):
    sim = make_sim(trade_rate=500, speed=60, currencies=["BTC"])
    time.sleep(2.5)  # ~2.5 simulated minutes
    truth = control(sim, "trades", instrument="BTC-PERPETUAL")["trades"]
    assert len(truth) > 20
    start, end = truth[0]["timestamp"], truth[-1]["timestamp"]
    chart = rest(sim, "get_tradingview_chart_data", instrument_name="BTC-PERPETUAL", start_timestamp=start,
                 end_timestamp=end, resolution="1").json()["result"]
    assert chart["status"] == "ok"
    bars = _aggregate([t for t in truth if t["timestamp"] <= end], option=False)
    for i, tick in enumerate(chart["ticks"]):
        if tick in bars:
            o, h, lo, c, v, cost = bars[tick]
            assert (chart["open"][i], chart["high"][i], chart["low"][i], chart["close"][i]) == (o, h, lo, c)
            assert math.isclose(chart["volume"][i], v, rel_tol=1e-6)
            assert math.isclose(chart["cost"][i], cost, rel_tol=1e-6)
        else:
            assert chart["volume"][i] == 0 and chart["open"][i] == chart["close"][i - 1]
    assert set(bars) <= set(chart["ticks"])


def test_greeks_within_model_bounds(sim):
    opts = rest(sim, "get_instruments", currency="BTC", kind="option").json()["result"]
    pairs: dict = {}
    for inst in opts[::7]:
        t = rest(sim, "ticker", instrument_name=inst["instrument_name"]).json()["result"]
        g = t["greeks"]
        if inst["option_type"] == "call":
            assert 0 <= g["delta"] <= 1
        else:
            assert -1 <= g["delta"] <= 0
        assert g["gamma"] >= 0 and g["vega"] >= 0 and g["theta"] <= 0
        assert 5 <= t["mark_iv"] <= 300 and t["mark_price"] >= 0
        assert t["best_bid_price"] <= t["mark_price"] <= (t["best_ask_price"] or math.inf)
    for inst in opts:
        pairs.setdefault((inst["expiration_timestamp"], inst["strike"]), {})[inst["option_type"]] = inst["instrument_name"]
    (exp, strike), pair = sorted(pairs.items())[len(pairs) // 2]
    call = rest(sim, "ticker", instrument_name=pair["call"]).json()["result"]
    put = rest(sim, "ticker", instrument_name=pair["put"]).json()["result"]
    fwd = call["underlying_price"]
    assert math.isclose(call["mark_price"] - put["mark_price"], (fwd - strike) / fwd, abs_tol=2e-6)


def test_funding_history_consistent_with_premium(sim):
    now = rest(sim, "get_time").json()["result"]
    rows = rest(sim, "get_funding_rate_history", instrument_name="BTC-PERPETUAL",
                start_timestamp=now - 48 * 3_600_000, end_timestamp=now).json()["result"]
    assert len(rows) >= 47
    for prev, row in zip(rows, rows[1:]):
        assert row["timestamp"] - prev["timestamp"] == 3_600_000 and row["prev_index_price"] == prev["index_price"]
        assert math.isclose(row["interest_1h"], row["interest_8h"] / 8)
        assert abs(row["interest_8h"]) <= 0.005
    value = rest(sim, "get_funding_rate_value", instrument_name="BTC-PERPETUAL",
                 start_timestamp=now - 8 * 3_600_000, end_timestamp=now).json()["result"]
    expected = sum(r["interest_1h"] for r in rows if r["timestamp"] > now - 8 * 3_600_000)
    assert math.isclose(value, expected, abs_tol=1e-12)


def test_instruments_expire_and_get_listed_at_0800(make_sim):
    start = dt.datetime(2026, 3, 2, 7, 59, 54, tzinfo=dt.timezone.utc)  # a Monday
    sim = make_sim(start_ms=int(start.timestamp() * 1000), speed=10, currencies=["BTC"])
    c = Ws(sim)
    c.call("public/subscribe", {"channels": ["instrument.state.any.BTC"]})
    before = {i["instrument_name"] for i in rest(sim, "get_instruments", currency="BTC").json()["result"]}
    today = {n for n in before if n.split("-")[1] == "2MAR26"}
    assert len(today) >= 20
    events = []
    deadline = time.monotonic() + 20
    while not any(e["state"] == "created" for e in events) and time.monotonic() < deadline:
        events.extend(c.notifications("instrument.state.any.BTC", 1))
    events.extend(m["params"]["data"] for m in c.notes)
    after = {i["instrument_name"] for i in rest(sim, "get_instruments", currency="BTC").json()["result"]}
    assert not today & after
    closed = {e["instrument_name"] for e in events if e["state"] == "closed"}
    assert today <= closed | set()
    created = after - before
    assert created and all(n.split("-")[1] == "5MAR26" for n in created)
    assert all(e["timestamp"] == int(dt.datetime(2026, 3, 2, 8, tzinfo=dt.timezone.utc).timestamp() * 1000)
               for e in events if e["state"] == "closed")
