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

from collector.deribit import paging, parse
from collector.deribit.fields import datetime_to_ms
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


def by_time(client: RestClient, currency: str, start: datetime, end: datetime, kind: TradeKind = "option",
            errors: list[ParseError] | None = None, max_pages: int = 500) -> list[OptionTrade]:
    """Every ``kind`` trade of ``currency`` with ``start <= timestamp <= end``, oldest first."""
    out: list[OptionTrade] = []
    for page in paging.trades_by_time(client, currency, datetime_to_ms(start), datetime_to_ms(end), kind=kind,
                                      max_pages=max_pages):
        out.extend(parse.trades(page, errors))
    return out
