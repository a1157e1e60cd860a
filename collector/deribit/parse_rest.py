"""Pure parsers of REST results polled by the timer jobs: chart data, book summaries, funding history,
order books, instrument lists. Same rules as :mod:`collector.deribit.parse` (which re-exports these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import msgspec

from collector.deribit.fields import (
    ParseError, bad_number, currency_of, delivery, instrument_of, ms_to_datetime, num, sides, text, ts,
)
from collector.records import BookDepth, Candle, Funding, FutureCandle, OptionBar, OptionBookDepth

__all__ = ["candles", "option_bars", "funding", "book_depth", "Instrument", "instruments"]


_CANDLE_TYPES = {"perpetual": Candle, "future": FutureCandle}
_CHART_FIELDS = ("open", "high", "low", "close", "volume", "cost")


def candles(instrument: str, chart_result: Any, kind: str = "perpetual") -> list[Candle]:
    """``public/get_tradingview_chart_data`` result (parallel arrays) -> Candle (kind ``perpetual``) or
    FutureCandle (kind ``future``) rows. ``status: no_data`` -> []. Works for any instrument (options too:
    the caller then reads open/high/low/close/volume for :func:`option_bars`)."""
    rtype = _CANDLE_TYPES.get(kind)
    if rtype is None:
        raise ValueError(f"kind must be one of {sorted(_CANDLE_TYPES)}, not {kind!r}")
    if type(chart_result) is not dict:
        raise ParseError(f"expected an object, got {type(chart_result).__name__}")
    if chart_result.get("status") == "no_data":
        return []
    ticks = chart_result.get("ticks")
    if type(ticks) is not list:
        raise ParseError("ticks: missing or not an array")
    n = len(ticks)
    cols = []
    for f in _CHART_FIELDS:
        col = chart_result.get(f)
        if col is None and f == "cost":
            col = [None] * n
        if type(col) is not list or len(col) != n:
            raise ParseError(f"{f}: missing, not an array, or not as long as ticks")
        for v in col:
            if v is not None and type(v) is not float and (type(v) is not int or abs(v) > _MAX_INT_AS_FLOAT):
                raise bad_number(f, v)
        cols.append(col)
    cur = currency_of(instrument)
    fl = _opt_float
    return [
        rtype(ms_to_datetime(ticks[i], "ticks"), instrument, cur, fl(cols[0][i]), fl(cols[1][i]),
              fl(cols[2][i]), fl(cols[3][i]), fl(cols[4][i]), fl(cols[5][i]))
        for i in range(n)
    ]


_MAX_INT_AS_FLOAT = 10 ** 308   # beyond it float() overflows


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _no_zero(v: float | None) -> float | None:
    return v if v else None


def option_bars(book_summaries: Any, timestamp: datetime,
                chart_by_instrument: Mapping[str, Candle] | None = None,
                errors: list[ParseError] | None = None) -> list[OptionBar]:
    """``public/get_book_summary_by_currency?kind=option`` result -> one OptionBar per option at ``timestamp``
    (the minute the caller files it under).

    OHLCV comes from ``chart_by_instrument[instrument]`` (a :func:`candles` row of that minute, for the
    options that traded); otherwise it is None. ``bid_iv``/``ask_iv`` are not in book summaries -> None.
    ``index_price`` is the summary's ``index_price`` if present, else its ``estimated_delivery_price``
    (which is the index price for a live option). ``volume_24h`` is the summary's 24 h ``volume``.
    ``errors``: as in :func:`trades`.
    """
    if type(book_summaries) is not list:
        raise ParseError(f"book summaries: expected an array, got {type(book_summaries).__name__}")
    charts = chart_by_instrument or {}
    out = []
    for s in book_summaries:
        try:
            name = instrument_of(s)
            c = charts.get(name)
            idx = num(s, "index_price")
            if idx is None:
                idx = delivery(s)
            out.append(OptionBar(
                timestamp, name, currency_of(name),
                c.open if c else None, c.high if c else None, c.low if c else None,
                c.close if c else None, c.volume if c else None,
                _no_zero(num(s, "bid_price")), _no_zero(num(s, "ask_price")),
                _no_zero(num(s, "mid_price")), num(s, "mark_price"), num(s, "mark_iv"), None, None,
                num(s, "underlying_price"), text(s, "underlying_index"), idx,
                num(s, "volume"), num(s, "open_interest"),
            ))
        except ParseError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return out


def funding(instrument: str, history_rows: Any) -> list[Funding]:
    """``public/get_funding_rate_history`` result (hourly rows) -> Funding rows."""
    if type(history_rows) is not list:
        raise ParseError(f"funding history: expected an array, got {type(history_rows).__name__}")
    cur = currency_of(instrument)
    out = []
    for r in history_rows:
        if type(r) is not dict:
            raise ParseError(f"funding row: expected an object, got {type(r).__name__}")
        out.append(Funding(ts(r), instrument, cur, num(r, "interest_1h"), num(r, "interest_8h"),
                           num(r, "index_price"), num(r, "prev_index_price")))
    return out


def _levels(book: Mapping[str, Any], side: str, depth: int) -> tuple[list[float], list[float]]:
    levels = book.get(side)
    if levels is None:
        return [], []
    if type(levels) is not list:
        raise ParseError(f"{side}: expected an array")
    prices, amounts = [], []
    for lvl in levels[:depth]:
        if type(lvl) is not list or len(lvl) < 2:
            raise ParseError(f"{side}: a level is not [price, amount]")
        p, a = lvl[-2], lvl[-1]  # REST: [price, amount]; tolerate a leading action string
        if type(p) not in (int, float) or type(a) not in (int, float):
            raise ParseError(f"{side}: non-numeric level")
        prices.append(float(p))
        amounts.append(float(a))
    return prices, amounts


def book_depth(order_book_result: Any, depth: int, option: bool = False) -> BookDepth:
    """``public/get_order_book`` result -> a top-``depth`` BookDepth (OptionBookDepth if ``option``).

    Levels beyond ``depth`` are dropped; ``best_*_price`` follow the empty-side rule (0.0 -> None).
    """
    name = instrument_of(order_book_result)
    b = order_book_result
    bid_prices, bid_amounts = _levels(b, "bids", depth)
    ask_prices, ask_amounts = _levels(b, "asks", depth)
    bid_p, _, ask_p, _ = sides(b, "best_bid_price", "best_bid_amount", "best_ask_price", "best_ask_amount")
    if bid_p is None and bid_prices and "best_bid_price" not in b:
        bid_p = bid_prices[0]
    if ask_p is None and ask_prices and "best_ask_price" not in b:
        ask_p = ask_prices[0]
    change_id = b.get("change_id")
    if change_id is not None and type(change_id) is not int:
        raise ParseError("change_id: expected an integer")
    rtype = OptionBookDepth if option else BookDepth
    return rtype(ts(b), name, currency_of(name), change_id, depth, bid_prices, bid_amounts,
                 ask_prices, ask_amounts, bid_p, ask_p, num(b, "mark_price"), num(b, "index_price"))


class Instrument(msgspec.Struct, frozen=True, gc=False):
    """The parts of a ``public/get_instruments`` item the jobs use. ``expiration`` is None for perpetuals
    (Deribit's 3000-01-01 placeholder)."""

    name: str
    kind: str
    currency: str
    expiration: datetime | None
    is_active: bool
    settlement_period: str | None = None
    option_type: str | None = None
    strike: float | None = None


_PERPETUAL_EXPIRY_MS = 32503708800000  # 3000-01-01T08:00Z


def instruments(result: Any, errors: list[ParseError] | None = None) -> list[Instrument]:
    """``public/get_instruments`` result -> Instrument list (``errors``: as in :func:`trades`)."""
    if type(result) is not list:
        raise ParseError(f"instruments: expected an array, got {type(result).__name__}")
    out = []
    for d in result:
        try:
            name = instrument_of(d)
            kind = d.get("kind")
            if type(kind) is not str:
                raise ParseError("kind: missing or not a string")
            exp_ms = d.get("expiration_timestamp")
            if exp_ms is None or (type(exp_ms) is int and exp_ms >= _PERPETUAL_EXPIRY_MS):
                exp = None
            else:
                exp = ms_to_datetime(exp_ms, "expiration_timestamp")
            out.append(Instrument(name, kind, currency_of(name), exp, d.get("is_active") is not False,
                                  text(d, "settlement_period"), text(d, "option_type"), num(d, "strike")))
        except ParseError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return out
