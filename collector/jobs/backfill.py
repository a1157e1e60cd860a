"""Trade backfill over REST: the trades a stream missed, fetched by sequence number or by time.

Synchronous (run in a worker thread, one :class:`RestClient` per thread). Deribit keeps the trade history,
so a ``trade_seq`` jump or a disconnected period is recovered exactly: by sequence for one instrument
(``get_last_trades_by_instrument`` with ``start_seq``/``end_seq``), by time for a whole currency
(``get_last_trades_by_currency_and_time``, paged). What comes back is parsed by the same parser as the
stream; the database's natural key absorbs any overlap with what the stream already wrote.
"""

from __future__ import annotations

from datetime import datetime

from collector.deribit import parse
from collector.deribit.frames import ParseError
from collector.deribit.rest import RestClient
from collector.records import OptionTrade

PAGE = 1000


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def by_sequence(client: RestClient, instrument: str, from_seq: int, to_seq: int,
                errors: list[ParseError] | None = None) -> list[OptionTrade]:
    """Trades ``from_seq..to_seq`` (inclusive) of one instrument, oldest first."""
    out: list[OptionTrade] = []
    start = from_seq
    while start <= to_seq:
        res = client.get_last_trades_by_instrument(instrument, start_seq=start, end_seq=to_seq, count=PAGE,
                                                   sorting="asc")
        page = parse.trades(res, errors)
        if not page:
            break
        out.extend(page)
        nxt = max(t.trade_seq for t in page) + 1
        if nxt <= start:
            break
        start = nxt
    return [t for t in out if from_seq <= t.trade_seq <= to_seq]


def by_time(client: RestClient, currency: str, start: datetime, end: datetime, kind: str = "option",
            errors: list[ParseError] | None = None, max_pages: int = 500) -> list[OptionTrade]:
    """Every ``kind`` trade of ``currency`` with ``start <= timestamp <= end``, oldest first."""
    out: list[OptionTrade] = []
    seen: set[str] = set()
    lo, hi = _ms(start), _ms(end)
    for _ in range(max_pages):
        res = client.call("public/get_last_trades_by_currency_and_time", currency=currency, kind=kind,
                          start_timestamp=lo, end_timestamp=hi, count=PAGE, sorting="asc")
        page = parse.trades(res, errors)
        fresh = [t for t in page if t.trade_id not in seen]
        for t in fresh:
            seen.add(t.trade_id)
        out.extend(fresh)
        if not (isinstance(res, dict) and res.get("has_more")) or not page:
            break
        last = _ms(page[-1].timestamp)
        lo = last if fresh and last > lo else lo + 1   # a page of one millisecond: step past it
    return out
