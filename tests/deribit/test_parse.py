"""Parsers against the real and documented Deribit messages; malformed input becomes ParseError."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import msgspec
import pytest

from collector.deribit import parse as P
from collector.records import (
    BookDepth, Candle, FutureCandle, IndexPrice, OptionBookDepth, OptionQuote, OptionTrade, PerpetualQuote,
    PerpetualTrade, columns_of, table_name,
)

UTC = timezone.utc


def dt(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


# An option ticker shaped like the real captures quoted in API.md §4.5/§11 (tardis ETH/BTC options):
# an empty ask side is 0.0/0.0 with ask_iv 0.0; stats null without trades. (No option ticker sample
# exists in examples/, so this one is written from the documented field list.)
OPTION_TICKER = {
    "underlying_price": 9695.97, "underlying_index": "BTC-26JUN20", "timestamp": 1591340400214,
    "stats": {"volume": None, "price_change": None, "low": None, "high": None}, "state": "open",
    "settlement_price": 0.0005, "open_interest": 12.3, "min_price": 0.0001, "max_price": 0.015,
    "mark_price": 0.0036, "mark_iv": 63.21, "last_price": None, "interest_rate": 0.0,
    "instrument_name": "BTC-26JUN20-13000-C", "index_price": 9677.76,
    "greeks": {"vega": 4.12, "theta": -3.51, "rho": 0.93, "gamma": 0.00005, "delta": 0.0712},
    "estimated_delivery_price": 9677.76, "bid_iv": 61.5, "best_bid_price": 0.0035,
    "best_bid_amount": 7.5, "best_ask_price": 0.0, "best_ask_amount": 0.0, "ask_iv": 0.0,
}


# -- tickers and quotes ----------------------------------------------------------------------------

def test_ticker_docs_sample(examples):
    q = P.quote_from_ticker(examples.data("ws_ticker_docs"))
    assert isinstance(q, OptionQuote)
    assert q.timestamp == dt(2021, 6, 7, 10, 3, 14, 301000)
    assert q.timestamp.tzinfo is UTC
    assert (q.instrument, q.currency) == ("BTC-PERPETUAL", "BTC")
    assert (q.best_bid_price, q.best_bid_amount) == (36442.5, 5000.0)
    assert (q.best_ask_price, q.best_ask_amount) == (36443.0, 100.0)
    assert type(q.best_ask_price) is float and type(q.open_interest) is float
    assert q.mark_price == 36446.51 and q.index_price == 36441.64
    assert q.mark_iv is None and q.bid_iv is None and q.underlying_index is None


def test_rest_ticker_sample_parses_like_ws(examples):
    q = P.quote_from_ticker(examples.data("rest_ticker"))
    assert q.timestamp == dt(2021, 6, 7, 9, 54, 41, 955000)
    assert q.best_bid_price == 36289.5


def test_option_ticker_empty_side_is_null_not_zero():
    q = P.quote_from_ticker(OPTION_TICKER)
    assert q.best_ask_price is None and q.best_ask_amount is None and q.ask_iv is None
    assert (q.best_bid_price, q.best_bid_amount, q.bid_iv) == (0.0035, 7.5, 61.5)
    assert q.mark_iv == 63.21 and q.underlying_index == "BTC-26JUN20" and q.underlying_price == 9695.97
    assert q.currency == "BTC"


def test_iv_of_an_empty_side_and_zero_iv_are_null():
    d = dict(OPTION_TICKER, best_bid_price=0.0, best_bid_amount=0.0, bid_iv=500.0)
    q = P.quote_from_ticker(d)
    assert q.best_bid_price is None and q.bid_iv is None
    q = P.quote_from_ticker(dict(OPTION_TICKER, bid_iv=0.0))
    assert q.bid_iv is None and q.best_bid_price == 0.0035


def test_zero_price_with_size_is_kept_and_negative_prices_pass():
    q = P.quote_from_ticker(dict(OPTION_TICKER, best_bid_price=0.0, best_bid_amount=3.0,
                                 best_ask_price=-7.0, best_ask_amount=1.0))
    assert (q.best_bid_price, q.best_bid_amount) == (0.0, 3.0)
    assert q.best_ask_price == -7.0


def test_expired_ticker_string_delivery_price_and_nulls():
    d = dict(OPTION_TICKER, state="closed", estimated_delivery_price="expired", delivery_price=9500.1,
             mark_price=0.0, best_bid_price=0.0, best_bid_amount=0.0, ask_iv=500.0, bid_iv=0.0,
             greeks={"vega": 0.0, "theta": 0.0, "rho": 0.0, "gamma": 0.0, "delta": 0.0})
    q = P.quote_from_ticker(d)
    g = P.greeks_from_ticker(d)
    assert q.best_bid_price is None and q.best_ask_price is None and q.ask_iv is None
    assert q.mark_price == 0.0  # the mark really is 0 for an expired OTM option
    assert g.delta == 0.0 and g.ask_iv is None


def test_quote_channel_sample(examples):
    q = P.quote_from_quote(examples.data("ws_quote_docs"))
    assert q.timestamp == dt(2019, 2, 20, 10, 30, 24, 149000)
    assert (q.best_bid_price, q.best_bid_amount, q.best_ask_price, q.best_ask_amount) == (3914.97, 40.0, 3996.61, 50.0)
    assert q.mark_price is None and q.open_interest is None


def test_unknown_fields_are_ignored():
    d = dict(OPTION_TICKER, brand_new_field={"x": [1, 2]}, combo_state="active")
    assert P.quote_from_ticker(d) == P.quote_from_ticker(OPTION_TICKER)


# -- trades ------------------------------------------------------------------------------------------

def test_option_trades_channel_sample(examples):
    [t] = P.trades(examples.data("ws_trades_kind_currency_docs"))
    assert isinstance(t, OptionTrade)
    assert t.trade_id == "48079289" and type(t.trade_id) is str
    assert t.trade_seq == 2 and t.timestamp == dt(2020, 5, 26, 9, 16, 29, 306000)
    assert (t.instrument, t.currency) == ("BTC-27MAY20-9000-C", "BTC")
    assert (t.price, t.amount, t.direction, t.iv, t.tick_direction) == (0.0075, 3.0, "sell", 47.58, 2)
    assert t.contracts is None and t.liquidation is None and t.block_trade_id is None


def test_real_usdc_trade_currency_and_id(examples):
    frame = P.classify(examples.load("ws_trades_real_ccxt_usdc_perp"))
    [t] = P.trades(frame.data)
    assert t.currency == "BTC" and t.trade_id == "USDC-2436803" and t.price == 21026.0
    assert type(t.price) is float and t.trade_seq == 501899


def test_rest_trades_result_object(examples):
    [t] = P.trades(examples.data("rest_get_last_trades_by_instrument"))
    assert t.trade_seq == 36798 and t.trade_id == "277976" and t.iv is None


def test_ccxt_stringified_numbers_are_a_clean_error(examples):
    # ccxt's fixtures store numbers as strings (not what Deribit sends): refused, not coerced
    with pytest.raises(P.ParseError, match="trade_seq"):
        P.trades(examples.data("rest_get_last_trades_real_ccxt_spot"))


def test_optional_trade_fields():
    t = P.trade({"trade_seq": 5, "trade_id": "ETH-2696055", "timestamp": 1590484589306, "price": 0.01,
                 "amount": 1, "direction": "buy", "instrument_name": "ETH-29MAY20-200-P", "liquidation": "T",
                 "block_trade_id": "154", "combo_id": "ETH-STRD-29MAY20-200", "contracts": 1.0,
                 "starbase_match_id": 7})
    assert (t.currency, t.liquidation, t.block_trade_id, t.combo_id, t.contracts) == (
        "ETH", "T", "154", "ETH-STRD-29MAY20-200", 1.0)


def test_bad_trade_item_collected_or_raised(examples):
    good = examples.data("ws_trades_kind_currency_docs")[0]
    bad = {k: v for k, v in good.items() if k != "price"}
    errors: list = []
    out = P.trades([good, bad, good], errors)
    assert len(out) == 2 and len(errors) == 1 and "price" in str(errors[0])
    with pytest.raises(P.ParseError, match="price"):
        P.trades([good, bad])


# -- index, candles, summaries, greeks, funding, books ----------------------------------------------

def test_index_price_ws_and_rest(examples):
    i = P.index_price(examples.data("ws_deribit_price_index_docs"))
    assert i == IndexPrice(dt(2019, 2, 19, 14, 53, 22, 899000), "btc_usd", 3937.89, None)
    n = P.classify(examples.load("ws_notification_envelope_2019docs"))
    assert P.index_price(n.data).price == 6521.17
    at = dt(2024, 1, 1)
    r = P.index_price_from_rest("btc_usd", examples.data("rest_get_index_price"), at)
    assert r == IndexPrice(at, "btc_usd", 11628.81, 11628.81)
    assert P.currency_of_index("eth_usd") == "ETH"


def test_candles_docs_and_real(examples):
    c = P.candles("BTC-5APR19", examples.data("rest_get_tradingview_chart_data"), "future")
    assert [type(x) for x in c] == [FutureCandle, FutureCandle]
    assert c[0].timestamp == dt(2019, 4, 4, 10, 30) and c[1].timestamp == dt(2019, 4, 4, 11, 0)
    assert (c[0].open, c[0].high, c[0].low, c[0].close) == (4963.42, 5185.45, 4728.94, 5052.95)
    assert (c[1].volume, c[1].cost) == (20.095877981, 23400.0)
    [r] = P.candles("BTC_USDT", examples.data("rest_get_tradingview_chart_data_real_ccxt"))
    assert type(r) is Candle and r.currency == "BTC" and r.close == 73448.39 and r.cost == 587.580928


def test_candles_no_data_nulls_and_bad_arrays():
    assert P.candles("BTC-PERPETUAL", {"status": "no_data", "ticks": []}) == []
    res = {"status": "ok", "ticks": [60000], "open": [None], "high": [None], "low": [None],
           "close": [None], "volume": [0.0], "cost": [0.0]}
    [c] = P.candles("ETH-PERPETUAL", res)
    assert c.open is None and c.volume == 0.0 and c.timestamp == dt(1970, 1, 1, 0, 1)
    with pytest.raises(P.ParseError, match="close"):
        P.candles("ETH-PERPETUAL", dict(res, close=[]))
    with pytest.raises(P.ParseError, match="open"):
        P.candles("ETH-PERPETUAL", dict(res, open=["1.0"]))
    with pytest.raises(ValueError):
        P.candles("ETH-PERPETUAL", res, "swap")


def test_option_bars_from_summary_plus_chart(examples):
    at = dt(2019, 2, 15, 10, 52)
    chart = {"ETH-22FEB19-140-P": P.candles("ETH-22FEB19-140-P", {
        "status": "ok", "ticks": [1550227920000], "open": [0.3], "high": [0.34], "low": [0.3],
        "close": [0.34], "volume": [0.55], "cost": [0.2]})[0]}
    [b] = P.option_bars(examples.data("rest_get_book_summary_by_instrument"), at, chart)
    assert (b.timestamp, b.instrument, b.currency) == (at, "ETH-22FEB19-140-P", "ETH")
    assert (b.open, b.close, b.volume) == (0.3, 0.34, 0.55)
    assert (b.bid_price, b.ask_price, b.mid_price, b.mark_price) == (0.1488, 0.34, 0.2444, 80.0)
    assert (b.underlying_price, b.underlying_index, b.volume_24h, b.open_interest) == (121.38, "index_price", 0.55, 0.55)
    assert b.bid_iv is None and b.ask_iv is None and b.index_price is None
    [nb] = P.option_bars(examples.data("rest_get_book_summary_by_instrument"), at)
    assert nb.open is None and nb.volume is None


def test_option_bars_null_and_zero_quotes(examples):
    bars = P.option_bars(examples.data("rest_get_book_summary_by_currency"), dt(2019, 2, 15))
    assert [b.instrument for b in bars] == ["BTC-22FEB19", "BTC-PERPETUAL"]
    assert bars[0].mid_price is None and bars[0].bid_price is None and bars[0].index_price == 3579.73
    s = dict(examples.data("rest_get_book_summary_by_instrument")[0], bid_price=0.0, ask_price=0.0, mid_price=0.0)
    [b] = P.option_bars([s], dt(2019, 2, 15))
    assert (b.bid_price, b.ask_price, b.mid_price) == (None, None, None)


def test_greeks_from_option_ticker():
    g = P.greeks_from_ticker(OPTION_TICKER)
    assert (g.instrument, g.currency, g.timestamp) == ("BTC-26JUN20-13000-C", "BTC", dt(2020, 6, 5, 7, 0, 0, 214000))
    assert (g.delta, g.gamma, g.vega, g.theta, g.rho) == (0.0712, 0.00005, 4.12, -3.51, 0.93)
    assert (g.mark_iv, g.bid_iv, g.ask_iv) == (63.21, 61.5, None)
    assert (g.mark_price, g.underlying_price, g.index_price, g.open_interest) == (0.0036, 9695.97, 9677.76, 12.3)


def test_greeks_need_greeks(examples):
    with pytest.raises(P.ParseError, match="greeks"):
        P.greeks_from_ticker(examples.data("ws_ticker_docs"))


def test_funding_history(examples):
    rows = P.funding("BTC-PERPETUAL", examples.data("rest_get_funding_rate_history"))
    assert len(rows) == 4
    assert rows[0].timestamp == dt(2019, 10, 1, 1, 0) and rows[0].currency == "BTC"
    assert rows[0].interest_8h == -9.234260068476106e-05 and rows[0].interest_1h == -4.739622041017375e-07
    assert (rows[3].index_price, rows[3].prev_index_price) == (8422.36, 8431.97)


def test_book_depth_docs_sample(examples):
    b = P.book_depth(examples.data("rest_get_order_book"), 2)
    assert type(b) is BookDepth and b.timestamp == dt(2019, 2, 21, 14, 0, 26, 706000)
    assert b.change_id == 474988 and b.depth == 2
    assert b.bid_prices == [3955.75, 3940.75] and b.bid_amounts == [30.0, 102020.0]
    assert b.ask_prices == [] and b.ask_amounts == []
    assert b.best_bid_price == 3955.75 and b.best_ask_price is None  # 0.0 on the empty side
    assert (b.mark_price, b.index_price) == (3931.97, 3910.46)
    o = P.book_depth(examples.data("rest_get_order_book"), 10, option=True)
    assert type(o) is OptionBookDepth and len(o.bid_prices) == 3


def test_instruments_real_lists_and_currency_rule(examples):
    btc = P.instruments(examples.data("rest_get_instruments_real_2021_BTC"))
    usdc = P.instruments(examples.data("rest_get_instruments_real_2022_USDC"))
    assert len(btc) == 398 and sum(i.kind == "option" for i in btc) == 390
    perp = next(i for i in btc if i.name == "BTC-PERPETUAL")
    assert perp.expiration is None and perp.kind == "future"
    raw = examples.data("rest_get_instruments_real_2021_BTC") + examples.data("rest_get_instruments_real_2022_USDC")
    for item in raw:  # the rule agrees with Deribit's own base_currency on every real instrument
        assert P.currency_of(item["instrument_name"]) == item["base_currency"]
    assert {i.currency for i in usdc} >= {"BTC", "ETH", "SOL"}
    opt = next(i for i in btc if i.name == "BTC-24JUL21-37000-C")
    assert opt.expiration == dt(2021, 7, 24, 8, 0) and opt.strike == 37000.0 and opt.option_type == "call"


def test_currency_rule():
    assert P.currency_of("BTC-27DEC26-100000-C") == "BTC"
    assert P.currency_of("BTC_USDC-PERPETUAL") == "BTC"
    assert P.currency_of("XRP_USDC-30JUN23-0d625-C") == "XRP"
    assert P.currency_of("ETH-FS-29APR22_PERP") == "ETH"
    for bad in ("", "-PERPETUAL", "BT C-1"):
        with pytest.raises(P.ParseError):
            P.currency_of(bad)


def test_instrument_state(examples):
    s = P.instrument_state(examples.data("ws_instrument_state_docs"))
    assert (s.instrument, s.state, s.timestamp) == ("BTC-22MAR19", "created", dt(2019, 3, 20, 11, 22, 20))


# -- malformed input: always ParseError, never KeyError/TypeError/AttributeError -----------------------

def _mutations(d: dict):
    yield None
    yield []
    yield "text"
    yield 42
    for k in list(d):
        m = dict(d)
        del m[k]
        yield m
        for bad in (None, "1.5", True, [], {}, 1.5, -1):
            m = dict(d)
            m[k] = bad
            yield m


def _all_parsers(examples):
    opt = OPTION_TICKER
    return [
        (P.quote_from_ticker, opt),
        (P.perpetual_quote, examples.data("ws_ticker_docs")),
        (lambda d: P.perpetual_trade(P.trade(d)), examples.data("ws_trades_instrument_docs")[0]),
        (P.quote_from_quote, examples.data("ws_quote_docs")),
        (P.greeks_from_ticker, opt),
        (P.trade, examples.data("ws_trades_kind_currency_docs")[0]),
        (P.index_price, examples.data("ws_deribit_price_index_docs")),
        (lambda d: P.book_depth(d, 5), examples.data("rest_get_order_book")),
        (lambda d: P.candles("BTC-PERPETUAL", d), examples.data("rest_get_tradingview_chart_data")),
        (lambda d: P.funding("BTC-PERPETUAL", [d]), examples.data("rest_get_funding_rate_history")[0]),
        (lambda d: P.option_bars([d], dt(2020, 1, 1)), examples.data("rest_get_book_summary_by_instrument")[0]),
        (P.instrument_state, examples.data("ws_instrument_state_docs")),
        (lambda d: P.instruments([d]), examples.data("rest_get_instruments_real_2021_BTC")[0]),
    ]


def test_malformed_inputs_raise_only_parse_error(examples):
    tried = refused = 0
    for fn, sample in _all_parsers(examples):
        fn(copy.deepcopy(sample))  # the sample itself is fine
        for m in _mutations(sample):
            tried += 1
            try:
                fn(m)              # anything but a ParseError fails the test here
            except P.ParseError as err:
                refused += 1
                assert str(err), "a ParseError must say what is wrong"
    assert tried > 100            # the mutations really ran, over every parser
    assert 0 < refused < tried    # some mutations are refused, some are harmless (an extra field, a null)


def test_required_fields_named_in_error():
    d = dict(OPTION_TICKER)
    del d["timestamp"]
    with pytest.raises(P.ParseError, match="timestamp"):
        P.quote_from_ticker(d)
    with pytest.raises(P.ParseError, match="timestamp"):
        P.quote_from_ticker(dict(OPTION_TICKER, timestamp="1591340400214"))
    with pytest.raises(P.ParseError, match="instrument_name"):
        P.quote_from_ticker({k: v for k, v in OPTION_TICKER.items() if k != "instrument_name"})
    with pytest.raises(P.ParseError, match="best_bid_price"):
        P.quote_from_ticker(dict(OPTION_TICKER, best_bid_price=True))
    with pytest.raises(P.ParseError, match="timestamp"):
        P.quote_from_ticker(dict(OPTION_TICKER, timestamp=10**30))


def test_timestamps():
    assert P.ms_to_datetime(0) == dt(1970, 1, 1)
    assert P.ms_to_datetime(1623060194301.0) == dt(2021, 6, 7, 10, 3, 14, 301000)
    with pytest.raises(P.ParseError):
        P.ms_to_datetime(1.5)
    with pytest.raises(P.ParseError):
        P.ms_to_datetime(float("nan"))


# -- the stream's typed fast path gives exactly the dict parser's result or error ----------------------

def _same_as_dict_parser(d) -> None:
    import orjson
    raw = orjson.dumps(d)
    try:
        want = P.quote_from_ticker(d)
    except P.ParseError as err:
        for r in (raw, msgspec.Raw(raw)):
            with pytest.raises(P.ParseError) as got:
                P.quote_from_ticker_json(r)
            assert str(got.value) == str(err)
        return
    assert P.quote_from_ticker_json(raw) == want
    assert P.quote_from_ticker_json(msgspec.Raw(raw)) == want


def test_ticker_json_fast_path_equals_dict_parser(examples):
    for sample in (OPTION_TICKER, examples.data("ws_ticker_docs"), examples.data("rest_ticker")):
        _same_as_dict_parser(sample)
        for m in _mutations(sample):
            _same_as_dict_parser(m)
    _same_as_dict_parser(dict(OPTION_TICKER, timestamp=1591340400214.0, underlying_index=7, instrument_name=""))
    for raw in (b"", b"{", b"\xff", b"null"):
        with pytest.raises(P.ParseError):
            P.quote_from_ticker_json(raw)


# -- the perpetual's ticks (perpetuals_quotes, perpetuals_trades) ----------------------------------------

def test_perpetual_ticker_docs_sample(examples):
    q = P.perpetual_quote(examples.data("ws_ticker_docs"))
    assert isinstance(q, PerpetualQuote) and table_name(PerpetualQuote) == "perpetuals_quotes"
    assert q.timestamp == dt(2021, 6, 7, 10, 3, 14, 301000) and q.instrument == "BTC-PERPETUAL"
    assert (q.best_bid_price, q.best_bid_amount, q.best_ask_price, q.best_ask_amount) == (36442.5, 5000.0, 36443.0, 100.0)
    assert (q.mark_price, q.index_price, q.open_interest) == (36446.51, 36441.64, 502097590.0)
    assert (q.funding_rate, q.funding_8h) == (0.0, 2.11e-05)   # funding_rate is current_funding
    assert all(type(v) is float for v in msgspec.structs.astuple(q)[2:])   # JSON ints become floats
    r = P.perpetual_quote(examples.data("rest_ticker"))          # public/ticker: the same shape
    assert (r.best_ask_amount, r.funding_8h, r.timestamp) == (53040.0, 2.203e-05, dt(2021, 6, 7, 9, 54, 41, 955000))


def test_perpetual_quote_columns_are_the_tables():
    assert columns_of(PerpetualQuote) == (
        "timestamp", "instrument", "best_bid_price", "best_bid_amount", "best_ask_price", "best_ask_amount",
        "mark_price", "index_price", "funding_rate", "funding_8h", "open_interest")
    assert columns_of(PerpetualTrade) == (
        "timestamp", "instrument", "trade_seq", "trade_id", "price", "amount", "direction", "tick_direction",
        "index_price", "mark_price", "liquidation")


def test_perpetual_ticker_empty_side_and_missing_funding_are_null(examples):
    d = dict(examples.data("ws_ticker_docs"), best_ask_price=0.0, best_ask_amount=0.0)
    del d["current_funding"]
    q = P.perpetual_quote(d)
    assert q.best_ask_price is None and q.best_ask_amount is None and q.funding_rate is None
    assert q.best_bid_price == 36442.5
    with pytest.raises(P.ParseError, match="current_funding"):
        P.perpetual_quote(dict(d, current_funding="0.0001"))


def test_perpetual_trades_docs_real_usdc_and_rest(examples):
    t, = [P.perpetual_trade(x) for x in P.trades(examples.data("ws_trades_instrument_docs"))]
    assert isinstance(t, PerpetualTrade) and table_name(PerpetualTrade) == "perpetuals_trades"
    assert (t.instrument, t.trade_seq, t.trade_id, t.price, t.amount, t.direction, t.tick_direction) == (
        "BTC-PERPETUAL", 30289442, "48079269", 8950.0, 10.0, "sell", 2)
    assert (t.index_price, t.mark_price, t.liquidation) == (8955.88, 8948.9, None)
    assert t.timestamp == dt(2020, 5, 26, 9, 15, 12, 188000)
    u, = [P.perpetual_trade(x) for x in P.trades(examples.data("ws_trades_real_ccxt_usdc_perp"))]
    assert (u.instrument, u.trade_id, u.amount, u.trade_seq) == ("BTC_USDC-PERPETUAL", "USDC-2436803", 0.049, 501899)
    r, = [P.perpetual_trade(x) for x in P.trades(examples.data("rest_get_last_trades_by_instrument"))]
    assert (r.instrument, r.trade_seq, r.amount) == ("BTC-PERPETUAL", 36798, 100.0)
    # the optional liquidation flag (API.md §4.9: M, T or MT) is kept as sent
    liq = dict(examples.data("ws_trades_instrument_docs")[0], liquidation="MT")
    assert P.perpetual_trade(P.trade(liq)).liquidation == "MT"


def _same_as_perp_dict_parser(d) -> None:
    import orjson
    raw = orjson.dumps(d)
    try:
        want = P.perpetual_quote(d)
    except P.ParseError as err:
        for r in (raw, msgspec.Raw(raw)):
            with pytest.raises(P.ParseError) as got:
                P.perpetual_quote_json(r)
            assert str(got.value) == str(err)
        return
    assert P.perpetual_quote_json(raw) == want
    assert P.perpetual_quote_json(msgspec.Raw(raw)) == want


def test_perpetual_ticker_json_fast_path_equals_dict_parser(examples):
    for sample in (examples.data("ws_ticker_docs"), examples.data("rest_ticker")):
        _same_as_perp_dict_parser(sample)
        for m in _mutations(sample):
            _same_as_perp_dict_parser(m)
    for raw in (b"", b"{", b"\xff", b"null"):
        with pytest.raises(P.ParseError):
            P.perpetual_quote_json(raw)
