"""Pure parsers: a decoded Deribit message (the notification ``data`` or a REST ``result``) in, records out.

No I/O, no logging, no clock, no mutable module state (``currency_of`` is an ``lru_cache`` of a pure
function). Bad input raises :class:`ParseError` naming the field -- never a bare KeyError/TypeError.

Rules (API.md §11; records.py: "NULL when Deribit sends none, never 0"):

* Timestamps: integer ms since the epoch -> aware UTC ``datetime`` (exact integer arithmetic).
* Numbers must be JSON numbers (int or float, never bool or string); ``null`` -> None. Unknown extra
  fields are ignored. ``estimated_delivery_price`` may be the string ``"expired"`` -> None.
* Empty book side: Deribit sends ``best_*_price: 0.0`` with ``best_*_amount: 0.0``. A side whose price
  AND amount are both 0/absent/null is "no side": price and amount become None. A 0.0 price with a
  non-zero amount is kept (combos can trade at 0 or below).
* Implied vols: ``bid_iv``/``ask_iv`` of exactly 0 mean "no IV" -> None; the IV of an empty side is None
  too (Deribit sends e.g. ``ask_iv: 500.0`` on a closed book). ``mark_iv`` is kept as sent.
* Book summaries (no sizes there): ``bid_price``/``ask_price``/``mid_price`` of 0 or null -> None.
* Currency = the base coin, derived from the instrument name: the text before the first ``-``, then
  before the first ``_``: ``BTC-27DEC26-100000-C`` -> BTC, ``BTC_USDC-PERPETUAL`` -> BTC (linear USDC
  products are filed under their underlying, not under the settlement coin), ``BTC_USDT`` -> BTC.
  Index names: ``btc_usd`` -> BTC.
"""

from __future__ import annotations

from datetime import datetime
from sys import intern as _intern
from typing import Any

import msgspec

from collector.deribit.fields import (
    ParseError, currency_of, delivery, instrument_of, iv, ms_to_datetime, num, req, sides, text, ts,
)
from collector.deribit.fields import currency_of_index  # noqa: F401 (re-exported)
from collector.deribit.frames import classify, decode  # noqa: F401 (re-exported)
from collector.deribit.parse_rest import (  # noqa: F401 (re-exported)
    Instrument, book_depth, candles, funding, instruments, option_bars,
)
from collector.records import Greeks, IndexPrice, OptionQuote, OptionTrade, PerpetualQuote, PerpetualTrade

__all__ = [
    "ParseError", "decode", "classify", "ms_to_datetime", "currency_of", "currency_of_index",
    "quote_from_ticker", "quote_from_ticker_json", "quote_from_quote", "trade", "trades", "index_price",
    "index_price_from_rest",
    "candles", "option_bars", "greeks_from_ticker", "funding", "book_depth", "InstrumentState",
    "instrument_state", "Instrument", "instruments", "perpetual_quote", "perpetual_quote_json",
    "perpetual_trade",
]


def quote_from_ticker(data: Any) -> OptionQuote:
    """``ticker.{instrument}.{interval}`` data (or a ``public/ticker`` result) -> OptionQuote."""
    name = instrument_of(data)
    bid_p, bid_a, ask_p, ask_a = sides(data, "best_bid_price", "best_bid_amount", "best_ask_price",
                                       "best_ask_amount")
    g = data.get("greeks")
    if g is not None and type(g) is not dict:
        raise ParseError("greeks: not an object")
    g = g or {}
    stats = data.get("stats")
    if stats is not None and type(stats) is not dict:
        raise ParseError("stats: not an object")
    mark_iv = num(data, "mark_iv")
    return OptionQuote(
        ts(data), name, currency_of(name), bid_p, bid_a, ask_p, ask_a,
        num(data, "mark_price"), mark_iv,
        iv(data, "bid_iv", bid_p, bid_a), iv(data, "ask_iv", ask_p, ask_a),
        num(data, "underlying_price"), text(data, "underlying_index"),
        num(data, "index_price"), num(data, "open_interest"),
        num(g, "delta"), num(g, "gamma"), num(g, "vega"), num(g, "theta"), num(g, "rho"),
        num(data, "last_price"), num(stats or {}, "volume"), mark_iv,
    )


class _Greeks(msgspec.Struct, gc=False):
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    rho: float | None = None


class _Stats(msgspec.Struct, gc=False):
    volume: float | None = None


_NO_GREEKS = _Greeks()
_NO_STATS = _Stats()


class _Ticker(msgspec.Struct, gc=False):
    """The fields of a ticker that an OptionQuote needs; msgspec skips the rest without building them."""

    timestamp: int
    instrument_name: str
    best_bid_price: float | None = None
    best_bid_amount: float | None = None
    best_ask_price: float | None = None
    best_ask_amount: float | None = None
    mark_price: float | None = None
    mark_iv: float | None = None
    bid_iv: float | None = None
    ask_iv: float | None = None
    underlying_price: float | None = None
    underlying_index: str | None = None
    index_price: float | None = None
    open_interest: float | None = None
    last_price: float | None = None
    greeks: _Greeks | None = None
    stats: _Stats | None = None


_ticker = msgspec.json.Decoder(_Ticker)


def quote_from_ticker_json(raw: bytes | msgspec.Raw) -> OptionQuote:
    """The same as ``quote_from_ticker(decode(raw))``, decoding the JSON straight into the needed fields.

    A ticker msgspec refuses (a wrong type, a missing field, not JSON) goes through the dict parser, so
    the result and the :class:`ParseError` are exactly those of :func:`quote_from_ticker`.
    """
    try:
        t = _ticker.decode(raw)
    except msgspec.DecodeError:
        return quote_from_ticker(decode(raw))
    name = t.instrument_name
    if not name:
        raise ParseError("instrument_name: missing or not a string")
    name = _intern(name)  # one str per instrument, not one per row held in the queue
    und = t.underlying_index
    bid_p, bid_a, ask_p, ask_a = t.best_bid_price, t.best_bid_amount, t.best_ask_price, t.best_ask_amount
    if not bid_p and not bid_a:
        bid_p = bid_a = None
    if not ask_p and not ask_a:
        ask_p = ask_a = None
    bid_iv, ask_iv = t.bid_iv, t.ask_iv
    if not bid_iv or (bid_p is None and bid_a is None):
        bid_iv = None
    if not ask_iv or (ask_p is None and ask_a is None):
        ask_iv = None
    g = t.greeks or _NO_GREEKS
    return OptionQuote(ms_to_datetime(t.timestamp), name, currency_of(name), bid_p, bid_a, ask_p, ask_a,
                       t.mark_price, t.mark_iv, bid_iv, ask_iv, t.underlying_price, und and _intern(und),
                       t.index_price, t.open_interest, g.delta, g.gamma, g.vega, g.theta, g.rho,
                       t.last_price, (t.stats or _NO_STATS).volume, t.mark_iv)


def quote_from_quote(data: Any) -> OptionQuote:
    """``quote.{instrument}`` data -> OptionQuote (best bid/ask only; the rest None)."""
    name = instrument_of(data)
    bid_p, bid_a, ask_p, ask_a = sides(data, "best_bid_price", "best_bid_amount", "best_ask_price",
                                       "best_ask_amount")
    return OptionQuote(ts(data), name, currency_of(name), bid_p, bid_a, ask_p, ask_a)


def trade(d: Any) -> OptionTrade:
    """One trade object (WS ``trades.*`` item or REST ``get_last_trades_*`` item) -> OptionTrade."""
    name = instrument_of(d)
    seq = d.get("trade_seq")
    if type(seq) is not int:
        raise ParseError(f"trade_seq: expected an integer, got {type(seq).__name__}")
    tid = text(d, "trade_id")
    if not tid:
        raise ParseError("trade_id: missing")
    direction = d.get("direction")
    if type(direction) is not str:
        raise ParseError("direction: missing or not a string")
    tick = d.get("tick_direction")
    if tick is not None and type(tick) is not int:
        raise ParseError("tick_direction: expected an integer")
    return OptionTrade(
        ts(d), name, currency_of(name), seq, tid, req(d, "price"), req(d, "amount"), direction,
        num(d, "contracts"), tick, num(d, "index_price"), num(d, "mark_price"), num(d, "iv"),
        text(d, "liquidation"), text(d, "block_trade_id"), text(d, "combo_id"),
    )


def trades(data: Any, errors: list[ParseError] | None = None) -> list[OptionTrade]:
    """An array of trades (WS data, or a REST result's ``trades``; a ``{trades: [...]}`` result is accepted).

    With ``errors`` given, a bad item is appended there and skipped (the good ones are kept);
    without it the first bad item raises :class:`ParseError`.
    """
    if type(data) is dict:
        data = data.get("trades")
    if type(data) is not list:
        raise ParseError(f"trades: expected an array, got {type(data).__name__}")
    out = []
    for item in data:
        try:
            out.append(trade(item))
        except ParseError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return out


def perpetual_quote(data: Any) -> PerpetualQuote:
    """A perpetual's ``ticker.{instrument}.{interval}`` data (or ``public/ticker`` result) -> PerpetualQuote.

    ``funding_rate`` is ``current_funding``; ``funding_8h`` as sent. Empty sides follow the module rules.
    """
    name = instrument_of(data)
    bid_p, bid_a, ask_p, ask_a = sides(data, "best_bid_price", "best_bid_amount", "best_ask_price",
                                       "best_ask_amount")
    return PerpetualQuote(ts(data), name, bid_p, bid_a, ask_p, ask_a, num(data, "mark_price"),
                          num(data, "index_price"), num(data, "current_funding"), num(data, "funding_8h"),
                          num(data, "open_interest"))


class _PerpTicker(msgspec.Struct, gc=False):
    """The fields of a perpetual's ticker that a PerpetualQuote needs."""

    timestamp: int
    instrument_name: str
    best_bid_price: float | None = None
    best_bid_amount: float | None = None
    best_ask_price: float | None = None
    best_ask_amount: float | None = None
    mark_price: float | None = None
    index_price: float | None = None
    current_funding: float | None = None
    funding_8h: float | None = None
    open_interest: float | None = None


_perp_ticker = msgspec.json.Decoder(_PerpTicker)


def perpetual_quote_json(raw: bytes | msgspec.Raw) -> PerpetualQuote:
    """The same as ``perpetual_quote(decode(raw))``, decoding the JSON straight into the needed fields
    (what msgspec refuses goes through the dict parser, for the same result or ParseError)."""
    try:
        t = _perp_ticker.decode(raw)
    except msgspec.DecodeError:
        return perpetual_quote(decode(raw))
    name = t.instrument_name
    if not name:
        raise ParseError("instrument_name: missing or not a string")
    bid_p, bid_a, ask_p, ask_a = t.best_bid_price, t.best_bid_amount, t.best_ask_price, t.best_ask_amount
    if not bid_p and not bid_a:
        bid_p = bid_a = None
    if not ask_p and not ask_a:
        ask_p = ask_a = None
    return PerpetualQuote(ms_to_datetime(t.timestamp), _intern(name), bid_p, bid_a, ask_p, ask_a, t.mark_price,
                          t.index_price, t.current_funding, t.funding_8h, t.open_interest)


def perpetual_trade(t: OptionTrade) -> PerpetualTrade:
    """A trade parsed by :func:`trade` whose instrument is a perpetual -> its ``perpetuals_trades`` row."""
    return PerpetualTrade(t.timestamp, t.instrument, t.trade_seq, t.trade_id, t.price, t.amount, t.direction,
                          t.tick_direction, t.index_price, t.mark_price, t.liquidation)


def index_price(data: Any) -> IndexPrice:
    """``deribit_price_index.{index}`` data ``{index_name, price, timestamp}`` -> IndexPrice."""
    if type(data) is not dict:
        raise ParseError(f"expected an object, got {type(data).__name__}")
    name = data.get("index_name")
    if type(name) is not str or not name:
        raise ParseError("index_name: missing or not a string")
    return IndexPrice(ts(data), name, req(data, "price"), delivery(data))


def index_price_from_rest(index_name: str, result: Any, timestamp: datetime) -> IndexPrice:
    """``public/get_index_price`` result ``{index_price, estimated_delivery_price}`` + the time of the call."""
    if type(result) is not dict:
        raise ParseError(f"expected an object, got {type(result).__name__}")
    return IndexPrice(timestamp, index_name, req(result, "index_price"), delivery(result))


def greeks_from_ticker(data: Any) -> Greeks:
    """An option's ticker (WS ``ticker.*`` data or ``public/ticker`` result) -> Greeks.

    The ``greeks`` object is required (a non-option ticker raises ParseError); values are kept as sent
    (an expired option's greeks are all 0). IVs follow the module rules.
    """
    name = instrument_of(data)
    g = data.get("greeks")
    if type(g) is not dict:
        raise ParseError("greeks: missing or not an object")
    bid_p, bid_a, ask_p, ask_a = sides(data, "best_bid_price", "best_bid_amount", "best_ask_price",
                                       "best_ask_amount")
    return Greeks(
        ts(data), name, currency_of(name),
        num(g, "delta"), num(g, "gamma"), num(g, "vega"), num(g, "theta"), num(g, "rho"),
        num(data, "mark_iv"), iv(data, "bid_iv", bid_p, bid_a), iv(data, "ask_iv", ask_p, ask_a),
        num(data, "mark_price"), num(data, "underlying_price"), num(data, "index_price"),
        num(data, "open_interest"),
    )


class InstrumentState(msgspec.Struct, frozen=True, gc=False):
    """``instrument.state.{kind}.{currency}`` data: ``state`` e.g. ``created``, ``started``, ``settled``."""

    timestamp: datetime
    instrument: str
    state: str


def instrument_state(data: Any) -> InstrumentState:
    name = instrument_of(data)
    state = data.get("state")
    if type(state) is not str:
        raise ParseError("state: missing or not a string")
    return InstrumentState(ts(data), name, state)
