"""Paging through Deribit's trade history over REST: the one loop for each way of asking.

* :func:`trades_by_time` -- every trade of a currency (of one kind) in ``[start, end]`` ms,
  ``get_last_trades_by_currency_and_time``, oldest first. Deribit pages by time: the next page starts at
  the last timestamp of this one (that millisecond may hold more trades than came back), so the trades
  of that millisecond come twice and are given once (by ``trade_id``); a page all of one millisecond
  steps past it.
* :func:`trades_by_sequence` -- the trades ``from_seq..to_seq`` of one instrument,
  ``get_last_trades_by_instrument``, oldest first.

Both yield the raw trade objects of each page (what a parser, or a caller that wants only the names,
takes) and raise :class:`ParseError` when an answer is not ``{trades: [...], has_more}``; the client's
errors (:class:`~collector.deribit.rest.DeribitError`) pass through.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Iterator

from collector.deribit.frames import ParseError
from collector.deribit.rest import RestClient, TradeKind

__all__ = ["PAGE", "each_page", "trades_by_time", "trades_by_sequence"]

PAGE = 1000  # the most trades Deribit returns per request


def _page(result: Any) -> list:
    trades = result.get("trades") if type(result) is dict else None
    if type(trades) is not list:
        raise ParseError("trades: expected {trades: [...], has_more}")
    return trades


def trades_by_time(client: RestClient, currency: str, start_ms: int, end_ms: int, *,
                   kind: TradeKind = "option", max_pages: int = 500) -> Generator[list[Any], None, int | None]:
    """The pages of trades of ``currency`` with ``start_ms <= timestamp <= end_ms``; at most ``max_pages``
    requests. Returns (the generator's value) None when every page was fetched, or, when it stopped at
    ``max_pages`` with more to come, the ms from which trades were not (all) fetched."""
    seen: set[Any] = set()
    lo = start_ms
    for _ in range(max_pages):
        result = client.get_last_trades_by_currency_and_time(currency, lo, end_ms, kind=kind, count=PAGE,
                                                             sorting="asc")
        trades = _page(result)
        fresh = []
        for t in trades:
            tid = t.get("trade_id") if type(t) is dict else None
            if tid is None:
                fresh.append(t)   # malformed: the parser says why
            elif tid not in seen:
                seen.add(tid)
                fresh.append(t)
        yield fresh
        if not result.get("has_more") or not trades:
            return None
        last = trades[-1].get("timestamp") if type(trades[-1]) is dict else None
        lo = last if fresh and type(last) is int and last > lo else lo + 1
    return lo if lo <= end_ms else None


def each_page(pages: Generator[list[Any], None, int | None], fn: Callable[[list[Any]], Any]) -> int | None:
    """Hand every page of :func:`trades_by_time` to ``fn``; returns its value (None: nothing left out)."""
    while True:
        try:
            page = next(pages)
        except StopIteration as stop:
            return stop.value
        fn(page)


def trades_by_sequence(client: RestClient, instrument: str, from_seq: int, to_seq: int) -> Iterator[list[Any]]:
    """The pages of trades of ``instrument`` from ``from_seq`` on, until ``to_seq`` is reached or Deribit has
    no more (a page may run past ``to_seq``: the caller keeps what it asked for)."""
    start = from_seq
    while start <= to_seq:
        trades = _page(client.get_last_trades_by_instrument(instrument, start_seq=start, end_seq=to_seq,
                                                            count=PAGE, sorting="asc"))
        if not trades:
            return
        yield trades
        seqs = [t["trade_seq"] for t in trades if type(t) is dict and type(t.get("trade_seq")) is int]
        nxt = max(seqs) + 1 if seqs else start
        if nxt <= start:
            return
        start = nxt
