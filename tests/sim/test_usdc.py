"""The simulator's USDC universe against the real captures, and what it accepts and refuses as Deribit does:
linear bases (SOL, XRP) listed under ``currency=USDC``, fractional strikes, ``*_usdc`` indexes, linear
perpetuals with funding; ``get_instruments`` with no currency or ``any``; ignored parameters; real error
codes."""

from __future__ import annotations

import json

import pytest

from collector.deribit.instruments import base_of, is_linear, is_option, is_perpetual, kind_of, strike_of
from tests.sim.conftest import rest
from tests.sim.shapes import EXAMPLES, example, mismatches

WS_KEYS = {"jsonrpc", "result", "usIn", "usOut", "usDiff", "testnet", "id"}


def tardis(instrument: str) -> dict:
    """The data of the real notification about ``instrument`` in the tardis capture."""
    for line in (EXAMPLES / "ws_real_tardis_mappers.jsonl").read_text().splitlines():
        msg = json.loads(line)
        data = msg["params"]["data"]
        if isinstance(data, dict) and data.get("instrument_name") == instrument:
            return data
    raise KeyError(instrument)


@pytest.fixture(scope="module")
def usdc_sim():
    from tests.sim.conftest import start_sim
    s = start_sim(currencies=["BTC", "SOL"], strikes=4, trade_rate=400)
    yield s
    s.stop()


def result(sim, method, **params):
    r = rest(sim, method, **params)
    assert r.status_code == 200, r.text
    return r.json()["result"]


def test_the_usdc_listing_holds_several_bases_in_the_real_shape(usdc_sim):
    listed = result(usdc_sim, "get_instruments", currency="USDC")
    bases = {i["base_currency"] for i in listed}
    assert {"SOL", "XRP", "BTC"} <= bases                      # BTC: its own BTC_USDC-PERPETUAL
    real = example("rest_get_instruments_real_2022_USDC")["response"]["result"]
    perps = [i for i in listed if i["settlement_period"] == "perpetual"]
    assert sorted(i["instrument_name"] for i in perps) == ["BTC_USDC-PERPETUAL", "SOL_USDC-PERPETUAL",
                                                           "XRP_USDC-PERPETUAL"]
    for p in perps:
        assert not mismatches(real[0], p), mismatches(real[0], p)
        assert (p["settlement_currency"], p["quote_currency"], p["instrument_type"]) == ("USDC", "USDC", "linear")
        assert p["price_index"] == f"{p['base_currency'].lower()}_usdc"
    for i in listed:
        assert is_linear(i["instrument_name"]) and base_of(i["instrument_name"]) == i["base_currency"]
        assert i["settlement_currency"] == "USDC"
        if i["kind"] == "option":
            assert strike_of(i["instrument_name"]) == i["strike"]   # 0d62 is 0.62
    xrp = [i for i in listed if i["base_currency"] == "XRP" and i["kind"] == "option"]
    assert xrp and any("d" in i["instrument_name"].split("-")[2] for i in xrp)
    assert not [i for i in listed if i["kind"] == "future" and not is_perpetual(i["instrument_name"])]
    # BTC's own listing is the inverse one only
    assert all(not is_linear(i["instrument_name"]) for i in result(usdc_sim, "get_instruments", currency="BTC"))


def test_get_instruments_without_currency_or_with_any_lists_everything(usdc_sim):
    every = {i["instrument_name"] for c in ("BTC", "USDC") for i in result(usdc_sim, "get_instruments", currency=c)}
    assert {i["instrument_name"] for i in result(usdc_sim, "get_instruments")} == every
    assert {i["instrument_name"] for i in result(usdc_sim, "get_instruments", currency="any")} == every
    options = {i["instrument_name"] for i in result(usdc_sim, "get_instruments", kind="option")}
    assert options == {n for n in every if is_option(n)}
    assert result(usdc_sim, "get_instruments", currency="USDT") == []     # Deribit knows it; nothing here


def test_parameters_the_exchange_ignores_are_ignored(usdc_sim):
    plain = result(usdc_sim, "get_index_price", index_name="sol_usdc")
    assert set(plain) == {"index_price", "estimated_delivery_price"} and 50 < plain["index_price"] < 500
    assert result(usdc_sim, "get_index_price", index_name="sol_usdc", currency="BTC", foo="bar")
    names = result(usdc_sim, "get_instruments", currency="USDC", kind="future")
    assert {i["instrument_name"] for i in result(usdc_sim, "get_instruments", currency="USDC", kind="future",
                                                 include_spots="true", unknown="1")} == \
        {i["instrument_name"] for i in names}


@pytest.mark.parametrize("method, params, param", [
    ("get_instruments", {"currency": "SOL"}, "currency"),            # SOL is listed under USDC
    ("get_book_summary_by_currency", {"currency": "any"}, "currency"),
    ("get_book_summary_by_currency", {}, "currency"),
    ("get_index_price", {"index_name": "sol_usd"}, "index_name"),    # SOL's index is sol_usdc
    ("ticker", {"instrument_name": "SOL-PERPETUAL"}, "instrument_name"),
    ("get_order_book", {"instrument_name": "SOL_USDC-PERPETUAL", "depth": 7}, "depth"),
    ("get_last_trades_by_currency", {"currency": "USDC", "count": 5000}, "count"),
    ("get_tradingview_chart_data", {"instrument_name": "SOL_USDC-PERPETUAL", "start_timestamp": 0,
                                    "end_timestamp": 1, "resolution": "7"}, "resolution"),
])
def test_refused_as_deribit_refuses(usdc_sim, method, params, param):
    body = rest(usdc_sim, method, **params).json()
    assert body["error"]["code"] == -32602 and body["error"]["message"] == "Invalid params", body
    assert body["error"]["data"]["param"] == param


def test_error_codes_of_the_real_captures(usdc_sim, ws):
    c = ws(usdc_sim)
    assert c.call("public/no_such_method")["error"] == {"message": "Method not found", "code": -32601}
    assert c.call("private/get_positions")["error"] == example("ws_error_invalid_params_real_testnet")[1]["error"]
    refused = c.call("public/subscribe", {"channels": ["trades.SOL_USDC-PERPETUAL.raw"]})["error"]
    assert refused == example("ws_error_13778_real_truncated")["error"]
    c.conn.send("{not json")
    msg = c.recv()
    assert msg["error"] == example("ws_error_no_id_real")["error"] and "id" not in msg


def test_linear_option_ticker_and_trades_match_the_real_captures(usdc_sim, ws):
    xrp = sorted((i for i in result(usdc_sim, "get_instruments", currency="USDC", kind="option")
                  if i["base_currency"] == "XRP"), key=lambda i: i["strike"])
    name = xrp[len(xrp) // 2]["instrument_name"]
    real = tardis("MATIC_USDC-9MAR24-1d02-C")
    t = result(usdc_sim, "ticker", instrument_name=name)
    assert not mismatches(real, t), mismatches(real, t)
    assert t["index_price"] < 2 and t["underlying_index"] in ("index_price", f"SYN.{name.rsplit('-', 2)[0]}")
    assert 0 < t["mark_price"] < t["index_price"]                # a USDC price of an XRP option
    client = ws(usdc_sim)
    chans = ["trades.option.USDC.100ms", "trades.SOL_USDC-PERPETUAL.100ms", "deribit_price_index.sol_usdc",
             "book.SOL_USDC-PERPETUAL.100ms", "perpetual.SOL_USDC-PERPETUAL.100ms"]
    refused = ["trades.option.SOL.100ms", "deribit_price_index.sol_usd"]
    resp = client.call("public/subscribe", {"channels": chans + refused})
    assert set(resp) == WS_KEYS and sorted(resp["result"]) == sorted(chans)   # SOL is no currency= value
    trades = client.notifications("trades.SOL_USDC-PERPETUAL.100ms", 1)[0]
    want = example("ws_trades_real_ccxt_usdc_perp")["params"]["data"][0]
    assert not mismatches(want, trades[0]), mismatches(want, trades[0])
    assert trades[0]["trade_id"].startswith("USDC-")
    bases: set[str] = set()
    for batch in client.notifications("trades.option.USDC.100ms", 8, timeout=30):
        for tr in batch:
            assert kind_of(tr["instrument_name"]) == "option" and is_linear(tr["instrument_name"])
            bases.add(base_of(tr["instrument_name"]))
    assert bases <= {"SOL", "XRP"} and bases
    snapshot, change = client.notifications("book.SOL_USDC-PERPETUAL.100ms", 2)[:2]
    real_change = example("ws_book_change_real_ccxt_usdc_perp")["params"]["data"]
    assert snapshot["type"] == "snapshot" and not mismatches(real_change, change, skip=frozenset({"asks"}))
    index = client.notifications("deribit_price_index.sol_usdc", 1)[0]
    assert index["index_name"] == "sol_usdc"
    assert set(client.notifications("perpetual.SOL_USDC-PERPETUAL.100ms", 1)[0]) == \
        set(example("ws_perpetual_docs")["data_examples"][-1]["data"])


def test_linear_funding_and_the_other_methods_in_the_real_shape(usdc_sim):
    now = result(usdc_sim, "get_time")
    rows = result(usdc_sim, "get_funding_rate_history", instrument_name="SOL_USDC-PERPETUAL",
                  start_timestamp=now - 8 * 3_600_000, end_timestamp=now)
    real = example("rest_get_funding_rate_history")["response"]["result"]
    assert rows and not mismatches(real, rows)
    assert all(50 < r["index_price"] < 500 for r in rows)         # SOL's index, not BTC's
    cases = [("rest_get_expirations", "get_expirations", {"currency": "any", "kind": "any"}),
             ("rest_get_supported_index_names", "get_supported_index_names", {"type": "all"}),
             ("rest_get_currencies", "get_currencies", {}),
             ("rest_get_book_summary_by_currency", "get_book_summary_by_currency", {"currency": "USDC",
                                                                                    "kind": "future"})]
    for ex_name, method, params in cases:
        got = result(usdc_sim, method, **params)
        want = example(ex_name)["response"]["result"]
        problems = mismatches(want, got, method, frozenset({"mark_iv"}))
        assert not problems and got, (method, problems)
    assert "USDC" in {c["currency"] for c in result(usdc_sim, "get_currencies")}
    assert "sol_usdc" in result(usdc_sim, "get_supported_index_names")
    assert result(usdc_sim, "get_contract_size", instrument_name="SOL_USDC-PERPETUAL") == {"contract_size": 1}
    exp = result(usdc_sim, "get_expirations", currency="USDC", kind="future")
    assert exp == {"future": ["PERPETUAL"]}
