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
* index: ``public/get_index_price`` of the currency's index (``btc_usd``; ``sol_usdc`` for a USDC-linear
  base) at ``M``'s exchange time.

Cadences (the Docker setup's settings): the pass runs every minute by default, or at the shortest of
``REST_PERPETUAL_INTERVAL``, ``REST_FUTURES_INTERVAL`` and ``REST_OPTIONS_OHLCV_INTERVAL``; a perpetual's or a
future's candles are fetched once its interval's worth of minutes is missing (all of them: a slower cadence
skips nothing), the option chain's row on the UTC multiples of its interval.

Listings are asked per ``currency=`` source (:func:`collector.jobs.chain.sources`: SOL's instruments are
under ``USDC``) and filed under their base (:func:`collector.jobs.chain.split`). A currency's option
rows are written only when every one of its sources answered.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from collector.config import Settings
from collector.deribit import paging, parse
from collector.deribit.fields import ParseError, datetime_to_ms, ms_to_datetime
from collector.deribit.instruments import currency, is_perpetual
from collector.jobs import chain
from collector.deribit.rest import RestClient
from collector.jobs.restjob import Gap, Outcome, RestPass, Task, book_summaries, exchange_ms
from collector.records import Candle, DataGap, FutureCandle, Record

log = logging.getLogger(__name__)

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
    options_due = option_row_due(minute, settings.rest_options_ohlcv_interval_s)
    srcs = chain.sources(settings.currencies)   # BTC, ETH, USDC (SOL's and BTC's linear ones): each asked once
    for src in srcs:
        # mypy cannot infer a lambda with a default argument (binding the loop variable): ignore[misc]
        listing.append(Task(f"futures {src}", lambda c, src=src: book_summaries(c, src, "future")))  # type: ignore[misc]
        if options_due:
            listing += [
                Task(f"options {src}", lambda c, src=src: book_summaries(c, src, "option")),  # type: ignore[misc]
                Task(f"option trades {src}", lambda c, src=src: traded_options(c, src, bar, p.add)),  # type: ignore[misc]
            ]
    for cur in settings.currencies:
        listing.append(Task(f"index {cur}", lambda c, cur=cur: p.add([_index(c, cur, now)])))  # type: ignore[misc]
    listed = p.run(listing)

    def by_currency(what: str) -> dict[str, list]:
        return chain.split({src: listed[f"{what} {src}"] for src in srcs if f"{what} {src}" in listed},
                           settings.currencies)

    futures = [s["instrument_name"] for rows in by_currency("futures").values() for s in rows]
    tasks = [Task(name, _candles_task(p, name, start, minute - 1),
                  Gap("perpetuals_ohlcv" if is_perpetual(name) else "futures_ohlcv", ms_to_datetime(start),
                      ms_to_datetime(minute - MINUTE_MS), recoverable=True))
             for name, start in resume_points(p, futures, minute).items()
             if minute - start >= candle_interval_ms(settings, name)]
    options = {cur: rows for cur, rows in by_currency("options").items()
               if all(f"options {src}" in listed for src in currency(cur).sources)}
    live = {s["instrument_name"] for rows in options.values() for s in rows}
    traded = sorted(set().union(*[listed.get(f"option trades {src}", set()) for src in srcs]) & live)
    bar_gap = Gap("options_ohlcv", ms_to_datetime(bar), ms_to_datetime(bar), recoverable=False)  # row kept, no OHLC
    # mypy cannot infer a lambda with a default argument (binding the loop variable): ignore[misc]
    tasks += [Task(name, lambda c, name=name: option_candle(c, name, bar), bar_gap) for name in traded]  # type: ignore[misc]
    fetched = p.run(tasks)

    charts = {name: fetched[name] for name in traded if fetched.get(name) is not None}
    for cur, rows in options.items():
        errors: list[ParseError] = []
        p.add(parse.option_bars(rows, ms_to_datetime(bar), charts, errors=errors))
        for err in errors:
            p.fail(f"option row {cur}", err)


def option_row_due(minute: int, interval_s: float) -> bool:
    """The option chain's row is taken on the UTC multiples of REST_OPTIONS_OHLCV_INTERVAL (``minute``: the
    start of the pass's exchange minute, so the timer's firing -- every interval -- is one of them)."""
    return (minute // MINUTE_MS) % max(1, int(interval_s // 60)) == 0


def candle_interval_ms(settings: Settings, name: str) -> int:
    """A perpetual's / future's candles are fetched once this many minutes are missing (REST_PERPETUAL_INTERVAL,
    REST_FUTURES_INTERVAL): on a slower cadence nothing is skipped, the pass that is due fetches them all."""
    seconds = settings.rest_perpetual_interval_s if is_perpetual(name) else settings.rest_futures_interval_s
    return int(seconds // 60) * MINUTE_MS


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


def traded_options(c: RestClient, source: str, bar: int, add: Callable[[list[Record]], Any] | None = None,
                   max_pages: int = MAX_TRADE_PAGES) -> set[str]:
    """Names of the options listed under ``source`` (``BTC``, ``USDC``) that traded in the minute starting
    at ``bar``. Cut short by the page limit, the options that traded only after the cut are not among them
    (their row gets no OHLC): a ``data_gaps`` row for the rest of the minute goes to ``add``."""
    names: set[str] = set()

    def take(trades: list) -> None:
        names.update(t["instrument_name"] for t in trades if type(t) is dict and type(t.get("instrument_name")) is str)

    end = bar + MINUTE_MS - 1
    cut = paging.each_page(paging.trades_by_time(c, source, bar, end, kind="option", max_pages=max_pages), take)
    if cut is not None:
        log.warning("option_trades_incomplete", extra={"source": source, "bar": bar, "reached": cut,
                                                       "requests": max_pages})
        if add is not None:
            add([DataGap(datetime.now(timezone.utc), "options_ohlcv", "", source, ms_to_datetime(cut),
                         ms_to_datetime(end), "page_limit", False,
                         details=f"incomplete: the minute's option trades stopped at the page limit ({max_pages} "
                                 f"requests); options that traded only after it have no OHLC in this bar")])
    return names


def _index(c: RestClient, cur: str, now: int):
    name = currency(cur).index_name   # btc_usd; sol_usdc for a linear base
    return parse.index_price_from_rest(name, c.get_index_price(name), ms_to_datetime(now))
