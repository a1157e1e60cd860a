"""Trade backfill over REST: the trades a stream missed, fetched by sequence number or by time.

Synchronous (run in a worker thread, one :class:`RestClient` per thread). Deribit keeps the trade history,
so a ``trade_seq`` jump or a disconnected period is recovered exactly: by sequence for one instrument
(``get_last_trades_by_instrument`` with ``start_seq``/``end_seq``), by time for a whole currency
(``get_last_trades_by_currency_and_time``), paged by :mod:`collector.deribit.paging`. What comes back is
parsed by the same parser as the stream; the database's natural key absorbs any overlap with what the
stream already wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from collector.deribit import instruments, paging, parse
from collector.deribit.fields import datetime_to_ms, ms_to_datetime
from collector.deribit.frames import ParseError
from collector.deribit.rest import RestClient, TradeKind
from collector.records import OptionTrade


def by_sequence(client: RestClient, instrument: str, from_seq: int, to_seq: int,
                errors: list[ParseError] | None = None) -> list[OptionTrade]:
    """Trades ``from_seq..to_seq`` (inclusive) of one instrument, oldest first."""
    out: list[OptionTrade] = []
    for page in paging.trades_by_sequence(client, instrument, from_seq, to_seq):
        out.extend(parse.trades(page, errors))
    return [t for t in out if from_seq <= t.trade_seq <= to_seq]


class TimeTrades(list[OptionTrade]):
    """What :func:`by_time` fetched: the trades (a list, oldest first), and whether that is all of them.
    ``complete`` is False when the page limit stopped it with more to come; the trades are then complete
    only before ``reached`` (the rest of the period, ``reached`` included, was not fetched, or not all)."""

    def __init__(self, trades: Iterable[OptionTrade], *, reached: datetime, complete: bool, pages: int) -> None:
        super().__init__(trades)
        self.reached = reached
        self.complete = complete
        self.pages = pages


def by_time(client: RestClient, currency: str, start: datetime, end: datetime, kind: TradeKind = "option",
            errors: list[ParseError] | None = None, max_pages: int = 500) -> TimeTrades:
    """Every ``kind`` trade of ``currency`` with ``start <= timestamp <= end``, oldest first, at most
    ``max_pages`` requests per source (see :class:`TimeTrades` for a fetch that stopped there). A base's
    trades are asked under each of its sources (SOL: ``USDC``, kept by name; BTC: ``BTC`` and its
    ``BTC_USDC-...`` ones under ``USDC``)."""
    c = instruments.currency(currency)
    out: list[OptionTrade] = []
    cuts: list[int] = []
    pages = 0
    for src in c.sources:
        def take(page: list, src: str = src) -> None:
            nonlocal pages
            pages += 1
            out.extend(t for t in parse.trades(page, errors) if src == c.code or c.owns(t.instrument))

        cut = paging.each_page(paging.trades_by_time(client, src, datetime_to_ms(start), datetime_to_ms(end),
                                                     kind=kind, max_pages=max_pages), take)
        if cut is not None:   # stopped at the page limit: complete only before ``cut``
            cuts.append(cut)
    if len(c.sources) > 1:
        out.sort(key=lambda t: t.timestamp)   # stable: each source's own order within a millisecond
    reached = ms_to_datetime(min(cuts)) if cuts else end
    return TimeTrades(out, reached=reached, complete=not cuts, pages=pages)
