"""Every REST method and channel answers with the keys and JSON types of Deribit's own examples."""

from __future__ import annotations

import time

import pytest

from collector.deribit.instruments import is_option
from tests.sim.conftest import control, rest
from tests.sim.shapes import example, mismatches

REST_KEYS = {"jsonrpc", "result", "usIn", "usOut", "usDiff", "testnet"}
WS_KEYS = REST_KEYS | {"id"}


def _a_call_and_a_put(sim):
    names = [i["instrument_name"] for i in rest(sim, "get_instruments", currency="BTC", kind="option").json()["result"]]
    return names[len(names) // 3]


def _traded(sim, cur="BTC", kind="future"):
    """An instrument of ``kind`` that has traded (waits for the market to produce one)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name, row in control(sim, "stats")["instruments"].items():
            if name.startswith(cur + "-") and is_option(name) == (kind == "option"):
                return name
        time.sleep(0.2)
    raise AssertionError("no trade generated")


def test_rest_methods_match_deribit_examples(make_sim):
    sim = make_sim(trade_rate=400)
    opt = _a_call_and_a_put(sim)
    traded_future = _traded(sim, "BTC", "future")
    traded_option = _traded(sim, "BTC", "option")
    now = rest(sim, "get_time").json()["result"]
    cases = [
        ("rest_get_instruments", "get_instruments", {"currency": "BTC", "kind": "future"}, ()),
        ("rest_get_instrument", "get_instrument", {"instrument_name": opt}, ()),
        ("rest_get_currencies", "get_currencies", {}, ()),
        ("rest_get_index_price", "get_index_price", {"index_name": "btc_usd"}, ()),
        ("rest_get_index_price_names", "get_index_price_names", {"extended": "true"}, ()),
        ("rest_get_tradingview_chart_data", "get_tradingview_chart_data",
         {"instrument_name": traded_future, "start_timestamp": now - 3_600_000, "end_timestamp": now,
          "resolution": "1"}, ()),
        # the 2019 docs example shows mark_iv on futures; the current spec has it for options only
        ("rest_get_book_summary_by_currency", "get_book_summary_by_currency", {"currency": "BTC", "kind": "future"},
         ("mark_iv",)),
        ("rest_get_book_summary_by_instrument", "get_book_summary_by_instrument", {"instrument_name": opt}, ()),
        ("rest_ticker", "ticker", {"instrument_name": "BTC-PERPETUAL"}, ()),
        ("rest_get_order_book", "get_order_book", {"instrument_name": "BTC-PERPETUAL", "depth": 5}, ()),
        ("rest_get_funding_rate_history", "get_funding_rate_history",
         {"instrument_name": "BTC-PERPETUAL", "start_timestamp": now - 8 * 3_600_000, "end_timestamp": now}, ()),
        ("rest_get_funding_rate_value", "get_funding_rate_value",
         {"instrument_name": "BTC-PERPETUAL", "start_timestamp": now - 8 * 3_600_000, "end_timestamp": now}, ()),
        ("rest_get_last_trades_by_instrument", "get_last_trades_by_instrument",
         {"instrument_name": traded_future, "count": 5}, ()),
        ("rest_get_last_trades_by_instrument_and_time", "get_last_trades_by_instrument_and_time",
         {"instrument_name": traded_future, "start_timestamp": now - 3_600_000, "end_timestamp": now + 60_000}, ()),
        ("rest_get_last_trades_by_currency", "get_last_trades_by_currency", {"currency": "BTC", "count": 5}, ()),
        ("rest_get_last_trades_by_currency_and_time", "get_last_trades_by_currency_and_time",
         {"currency": "BTC", "kind": "option", "start_timestamp": now - 3_600_000, "end_timestamp": now + 60_000}, ()),
        ("rest_get_time", "get_time", {}, ()),
        ("rest_public_test", "test", {}, ()),
        ("rest_public_status", "status", {}, ()),
    ]
    assert traded_option
    for ex_name, method, params, skip in cases:
        r = rest(sim, method, **params)
        assert r.status_code == 200, (method, r.text)
        body = r.json()
        assert set(body) == REST_KEYS, (method, body.keys())  # HTTP GET answers carry no id
        expected = example(ex_name)["response"]["result"] if "response" in example(ex_name) else example(ex_name)["result"]
        problems = mismatches(expected, body["result"], method, frozenset(skip))
        assert not problems, problems
        if isinstance(expected, (list, dict)) and expected:
            assert body["result"], f"{method} answered empty"


def test_option_ticker_and_summary_carry_greeks_and_ivs(sim):
    opt = _a_call_and_a_put(sim)
    t = rest(sim, "ticker", instrument_name=opt).json()["result"]
    for key in ("bid_iv", "ask_iv", "mark_iv", "interest_rate", "underlying_index", "underlying_price"):
        assert key in t
    assert set(t["greeks"]) == {"delta", "gamma", "vega", "theta", "rho"}
    s = rest(sim, "get_book_summary_by_currency", currency="ETH", kind="option").json()["result"]
    assert len(s) >= 300 and all("mark_iv" in row and "underlying_price" in row for row in s)


def test_error_envelope_matches_real_capture(sim):
    r = rest(sim, "get_tradingview_chart_data", instrument_name="BTC-1JAN00", start_timestamp=0,
             end_timestamp=1, resolution="1")
    body = r.json()
    real = example("rest_error_invalid_params_real")
    assert set(body) == set(real)
    assert body["error"] == real["error"]


WS_CHANNELS = [
    ("ws_ticker_docs", "ticker.BTC-PERPETUAL.100ms"),
    ("ws_quote_docs", "quote.BTC-PERPETUAL"),
    ("ws_deribit_price_index_docs", "deribit_price_index.btc_usd"),
    ("ws_perpetual_docs", "perpetual.BTC-PERPETUAL.100ms"),
    ("ws_markprice_options_docs", "markprice.options.btc_usd"),
    ("ws_book_grouped_docs", "book.ETH-PERPETUAL.100.1.100ms"),
    ("ws_trades_instrument_docs", "trades.BTC-PERPETUAL.100ms"),
    ("ws_trades_kind_currency_docs", "trades.option.BTC.100ms"),
]


@pytest.mark.parametrize("ex_name,channel", WS_CHANNELS, ids=[c for _, c in WS_CHANNELS])
def test_channel_matches_deribit_example(make_sim, ws, ex_name, channel):
    sim = make_sim(trade_rate=300)
    client = ws(sim)
    resp = client.call("public/subscribe", {"channels": [channel]})
    assert set(resp) == WS_KEYS and resp["result"] == [channel]
    data = client.notifications(channel, 1)[0]
    expected = example(ex_name)["data_examples"][-1]["data"]
    assert not mismatches(expected, data, channel), mismatches(expected, data, channel)


def test_book_channel_snapshot_then_change_match_examples(sim, ws):
    client = ws()
    client.call("public/subscribe", {"channels": ["book.BTC-PERPETUAL.100ms"]})
    first, second = client.notifications("book.BTC-PERPETUAL.100ms", 2)
    docs = example("ws_book_docs")["data_examples"]
    assert first["type"] == "snapshot" and "prev_change_id" not in first
    assert not mismatches(docs[0]["data"], first)
    assert second["type"] == "change"
    assert not mismatches(docs[1]["data"], second)
    assert second["prev_change_id"] == first["change_id"]


def test_instrument_state_matches_example(make_sim, ws):
    sim = make_sim()
    client = ws(sim)
    client.call("public/subscribe", {"channels": ["instrument.state.option.BTC"]})
    control(sim, "fault", {"kind": "list", "currency": "BTC"})
    data = client.notifications("instrument.state.option.BTC", 1)[0]
    assert not mismatches(example("ws_instrument_state_docs")["data_examples"][0]["data"], data)
    assert data["state"] == "created"


@pytest.mark.parametrize("ex_name,method,params", [
    ("ws_public_subscribe_docs", "public/subscribe", {"channels": ["deribit_price_index.btc_usd"]}),
    ("ws_public_unsubscribe", "public/unsubscribe", {"channels": ["deribit_price_index.btc_usd"]}),
    ("ws_public_unsubscribe_all", "public/unsubscribe_all", {}),
    ("ws_public_set_heartbeat", "public/set_heartbeat", {"interval": 30}),
    ("ws_public_disable_heartbeat", "public/disable_heartbeat", {}),
    ("ws_public_hello", "public/hello", {"client_name": "tests", "client_version": "1"}),
    ("rest_public_test", "public/test", {}),
    ("rest_get_time", "public/get_time", {}),
    ("rest_get_instruments", "public/get_instruments", {"currency": "BTC", "kind": "future"}),
])
def test_ws_methods_match_examples(sim, ws, ex_name, method, params):
    client = ws()
    if method == "public/unsubscribe":
        client.call("public/subscribe", params)
    resp = client.call(method, params)
    assert set(resp) == WS_KEYS, resp
    assert not mismatches(example(ex_name)["response"]["result"], resp["result"])
    if method == "public/unsubscribe":
        assert resp["result"] == params["channels"]
