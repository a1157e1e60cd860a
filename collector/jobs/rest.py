"""`collector rest`: the every-minute pass. 1-min candles of every perpetual and live dated future (with
catch-up), the option chain's 1-min row, and the index price of each currency.

Time is the exchange's (``public/get_time``), never the local clock. Let ``M`` be the start of the
exchange's current minute:

* candles: per instrument, from the minute after its newest stored candle (or ``M - horizon`` when it
  has none, or when that is older) to the last closed minute ``M - 1 min``; in chunks, oldest first, so a
  failure leaves no hole behind what is stored. A run repeated within the minute finds nothing to fetch.
* options: one ``options_ohlcv`` row per live option for the minute that just closed (``M - 1 min``):
  bid/ask/mid/mark/IV/underlying/24 h volume/open interest from one ``get_book_summary_by_currency``
  per currency, taken at the bar's close; open/high/low/close/volume from chart data for the options
  that traded in that minute (found with one ``get_last_trades_by_currency_and_time`` per currency).
* index: ``public/get_index_price`` of ``{cur}_usd`` at ``M``'s exchange time.
"""

from __future__ import annotations

from typing import Any

from collector.config import Settings
from collector.deribit import paging, parse
from collector.deribit.fields import ParseError, datetime_to_ms, ms_to_datetime
from collector.deribit.instruments import is_perpetual
from collector.deribit.rest import RestClient
from collector.jobs.restjob import Gap, Outcome, RestPass, Task, book_summaries, exchange_ms
from collector.records import Candle, FutureCandle

JOB = "rest"
MINUTE_MS = 60_000
CHART_CHUNK_MINUTES = 1440          # candles per chart request (a day)
OFFLINE_LOOKBACK_S = 3600.0         # without the database's resume points, fetch this much (spooled)
MAX_TRADE_PAGES = 50


def run(settings: Settings, **pass_kw: Any) -> Outcome:
    """One pass; ``pass_kw`` go to :class:`RestPass` (threads, bucket, client_kw)."""
    with RestPass(settings, JOB, **pass_kw) as p:
        ok, now = p.one("get_time", lambda c: exchange_ms(c.get_time()))
        if ok:
            assert now is not None
            _collect(p, now)
    return p.outcome


def _collect(p: RestPass, now: int) -> None:
    settings = p.settings
    minute = now - now % MINUTE_MS
    bar = minute - MINUTE_MS
    listing: list[Task] = []
    for cur in settings.currencies:
        listing += [
            # mypy cannot infer a lambda with a default argument (binding the loop variable): ignore[misc]
            Task(f"futures {cur}", lambda c, cur=cur: book_summaries(c, cur, "future")),  # type: ignore[misc]
            Task(f"options {cur}", lambda c, cur=cur: book_summaries(c, cur, "option")),  # type: ignore[misc]
            Task(f"option trades {cur}", lambda c, cur=cur: traded_options(c, cur, bar)),  # type: ignore[misc]
            Task(f"index {cur}", lambda c, cur=cur: p.add([_index(c, cur, now)])),  # type: ignore[misc]
        ]
    listed = p.run(listing)

    futures = [s["instrument_name"] for cur in settings.currencies for s in listed.get(f"futures {cur}", [])]
    tasks = [Task(name, _candles_task(p, name, start, minute - 1),
                  Gap("perpetuals_ohlcv" if is_perpetual(name) else "futures_ohlcv", ms_to_datetime(start),
                      ms_to_datetime(minute - MINUTE_MS), recoverable=True))
             for name, start in resume_points(p, futures, minute).items() if start < minute]
    options = {cur: listed[f"options {cur}"] for cur in settings.currencies if f"options {cur}" in listed}
    live = {s["instrument_name"] for chain in options.values() for s in chain}
    traded = sorted(set().union(*[listed.get(f"option trades {cur}", set()) for cur in settings.currencies]) & live)
    bar_gap = Gap("options_ohlcv", ms_to_datetime(bar), ms_to_datetime(bar), recoverable=False)  # row kept, no OHLC
    # mypy cannot infer a lambda with a default argument (binding the loop variable): ignore[misc]
    tasks += [Task(name, lambda c, name=name: option_candle(c, name, bar), bar_gap) for name in traded]  # type: ignore[misc]
    fetched = p.run(tasks)

    charts = {name: fetched[name] for name in traded if fetched.get(name) is not None}
    for cur, chain in options.items():
        errors: list[ParseError] = []
        p.add(parse.option_bars(chain, ms_to_datetime(bar), charts, errors=errors))
        for err in errors:
            p.fail(f"option row {cur}", err)


def resume_points(p: RestPass, names: list[str], minute: int) -> dict[str, int]:
    """``{instrument: first minute to fetch (ms)}``: after the newest stored candle, within the horizon
    (within :data:`OFFLINE_LOOKBACK_S` while the database cannot be read; the spool keeps those rows)."""
    horizon = int(p.settings.ohlcv_catchup_horizon_s // 60) * MINUTE_MS
    last = p.stored_until([(Candle, [n for n in names if is_perpetual(n)]),
                           (FutureCandle, [n for n in names if not is_perpetual(n)])])
    if last is None:
        horizon = min(horizon, int(OFFLINE_LOOKBACK_S // 60) * MINUTE_MS)
        last = {}
    floor = minute - horizon
    out = {}
    for name in names:
        ts = last.get(name)
        nxt = datetime_to_ms(ts) + MINUTE_MS if ts is not None else floor
        out[name] = max(floor, nxt - nxt % MINUTE_MS)
    return out


def _candles_task(p: RestPass, name: str, start: int, end: int):
    kind = "perpetual" if is_perpetual(name) else "future"

    def fetch(c: RestClient) -> int:
        n, s = 0, start
        while s <= end:
            e = min(end, s + CHART_CHUNK_MINUTES * MINUTE_MS - 1)
            lo, hi = ms_to_datetime(s), ms_to_datetime(e)
            rows = [r for r in parse.candles(name, c.get_tradingview_chart_data(name, s, e, "1"), kind)
                    if lo <= r.timestamp <= hi]
            p.add(rows)  # stored even if a later chunk fails: the next run resumes after them
            n += len(rows)
            s = e + 1
        return n

    return fetch


def option_candle(c: RestClient, name: str, bar: int) -> Candle | None:
    """The option's chart bar of the minute starting at ``bar`` (None when it has none)."""
    rows = parse.candles(name, c.get_tradingview_chart_data(name, bar, bar + MINUTE_MS - 1, "1"))
    at = ms_to_datetime(bar)
    return next((r for r in rows if r.timestamp == at), None)


def traded_options(c: RestClient, currency: str, bar: int) -> set[str]:
    """Names of the options of ``currency`` that traded in the minute starting at ``bar``."""
    names: set[str] = set()
    for trades in paging.trades_by_time(c, currency, bar, bar + MINUTE_MS - 1, kind="option",
                                        max_pages=MAX_TRADE_PAGES):
        names.update(t["instrument_name"] for t in trades
                     if type(t) is dict and type(t.get("instrument_name")) is str)
    return names


def _index(c: RestClient, currency: str, now: int):
    name = f"{currency.lower()}_usd"
    return parse.index_price_from_rest(name, c.get_index_price(name), ms_to_datetime(now))
