"""The stream's pipeline: one notification in, rows out (to a sink), continuity events out (to callbacks).

Shared by ``collector ws`` (live) and ``collector replay`` (a capture or an archive), so both give the
same rows from the same frames. No I/O and no awaiting here: the parsing is the pure parsers of
:mod:`collector.deribit.parse`; this class adds the per-instrument state a stream needs:

* quotes: a row only when an option's best bid/ask price or size changed (``ticker.*`` repeats unchanged
  books when only the mark moves); the same for the perpetual's ticker (``perpetuals_quotes``, with its
  mark, index, funding and open interest);
* trades: ``trade_seq`` continuity per instrument (options -> ``{cur}_option_trades``, perpetuals ->
  ``perpetuals_trades``; dated futures are not recorded); a jump calls ``on_trade_gap`` (the job
  backfills it over REST), an old seq is dropped as a duplicate;
* books: the ``change_id`` chain per instrument; a break calls ``on_book_break`` (the job resubscribes
  that one channel); the book is kept in memory and a top-N snapshot row is emitted every
  ``book_snapshot_every_s`` of exchange time;
* instrument states: ``on_state``.

Bad messages never raise out of :meth:`Pipeline.handle`: they are counted by reason, and the first of
each reason is handed to ``on_bad`` (the job logs it). No I/O, no logging, no clock: exchange
timestamps only.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Callable

from msgspec import Raw

from collector.deribit import parse
from collector.deribit.frames import ParseError
from collector.deribit.instruments import is_option, is_perpetual
from collector.deribit.sequence import BookChain, BookStatus, BookStep, TradeGap, TradeSequence
from collector.records import BookDepth, OptionBookDepth, Record

Sink = Callable[[Record], None]
MAX_REASONS = 1000  # distinct bad-message reasons remembered (and reported once each)


class _Book:
    __slots__ = ("bids", "asks", "change_id", "emitted_at")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.change_id = 0
        self.emitted_at: datetime | None = None


_NUMBER = (int, float)  # JSON numbers only: not bool, not a numeric string


def _apply(side: dict[float, float], levels: Any) -> None:
    if type(levels) is not list:
        raise ParseError("book side: expected an array")
    for lv in levels:  # every level checked before any is applied: a bad message leaves the book as it was
        if type(lv) is not list or len(lv) != 3 or type(lv[1]) not in _NUMBER or type(lv[2]) not in _NUMBER:
            raise ParseError("book level: expected [action, price, amount] with numbers")
    for action, price, amount in levels:
        if action == "delete" or not amount:
            side.pop(float(price), None)
        else:
            side[float(price)] = float(amount)


class Pipeline:
    def __init__(self, currency: str, sink: Sink, *, depth_levels: int = 20,
                 book_snapshot_every_s: float = 60.0,
                 on_trade_gap: Callable[[TradeGap, datetime | None, datetime], None] | None = None,
                 on_book_break: Callable[[str, BookStep], None] | None = None,
                 on_state: Callable[[parse.InstrumentState], None] | None = None,
                 on_bad: Callable[[str, str], None] | None = None) -> None:
        self.currency = currency
        self.sink = sink
        self.depth_levels = depth_levels
        self.book_every = timedelta(seconds=book_snapshot_every_s)
        self.on_trade_gap = on_trade_gap
        self.on_book_break = on_book_break
        self.on_state = on_state
        self.on_bad = on_bad
        self._seq = TradeSequence()
        self._chain = BookChain()
        self._books: dict[str, _Book] = {}
        self._last_quote: dict[str, tuple] = {}
        self._last_trade_at: dict[str, datetime] = {}
        self.counts: Counter = Counter()      # notifications, quotes, quotes_unchanged, trades, ...
        self.bad: Counter = Counter()         # bad messages by reason
        self._reported: set[str] = set()

    # -- entry point -----------------------------------------------------------------------------

    def handle(self, channel: str, data: Any) -> None:
        """``data`` is the decoded notification data, or its still-encoded JSON (``msgspec.Raw``)."""
        self.counts["notifications"] += 1
        head = channel[: channel.find(".")]
        try:
            if type(data) is Raw:
                if head == "ticker":
                    if "-PERPETUAL." in channel:
                        self._perp_quote(parse.perpetual_quote_json(data))
                    else:
                        self._quote(parse.quote_from_ticker_json(data))
                    return
                data = parse.decode(data)
            if head == "ticker":
                if "-PERPETUAL." in channel:
                    self._perp_quote(parse.perpetual_quote(data))
                else:
                    self._quote(parse.quote_from_ticker(data))
            elif head == "trades":
                self._trades(data)
            elif head == "quote":
                self._quote(parse.quote_from_quote(data))
            elif head == "deribit_price_index":
                row = parse.index_price(data)
                self.counts["index"] += 1
                self.sink(row)
            elif head == "book":
                self._book(channel, data)
            elif head == "instrument":
                st = parse.instrument_state(data)
                self.counts["states"] += 1
                if self.on_state is not None:
                    self.on_state(st)
            else:
                self.bad_message(f"unexpected channel {head!r}", channel)
        except ParseError as err:
            self.bad_message(f"{head}: {err}", channel)
        except (TypeError, ValueError, AttributeError, KeyError) as err:  # a shape no parser expected
            self.bad_message(f"{head}: {type(err).__name__}: {err}", channel)

    def bad_message(self, reason: str, where: str = "") -> None:
        """Count a bad message by reason; the first of each reason goes to ``on_bad``."""
        self.bad[reason] += 1
        if reason not in self._reported and len(self._reported) < MAX_REASONS:
            self._reported.add(reason)
            if self.on_bad is not None:
                self.on_bad(reason, where)

    # -- quotes ----------------------------------------------------------------------------------

    def _quote(self, q) -> None:
        if not is_option(q.instrument):   # only options have a quote table
            self.counts["ticker_not_option"] += 1
            return
        key = (q.best_bid_price, q.best_bid_amount, q.best_ask_price, q.best_ask_amount)
        if self._last_quote.get(q.instrument) == key:
            self.counts["quotes_unchanged"] += 1
            return
        self._last_quote[q.instrument] = key
        self.counts["quotes"] += 1
        self.sink(q)

    def _perp_quote(self, q) -> None:
        """A perpetual's ticker: a ``perpetuals_quotes`` row when its best bid/ask or their sizes changed."""
        if not is_perpetual(q.instrument):
            self.counts["ticker_not_perpetual"] += 1
            return
        key = (q.best_bid_price, q.best_bid_amount, q.best_ask_price, q.best_ask_amount)
        if self._last_quote.get(q.instrument) == key:
            self.counts["perpetual_quotes_unchanged"] += 1
            return
        self._last_quote[q.instrument] = key
        self.counts["perpetual_quotes"] += 1
        self.sink(q)

    # -- trades ----------------------------------------------------------------------------------

    def _trades(self, data: Any) -> None:
        errors: list[ParseError] = []
        rows = parse.trades(data, errors)
        for err in errors:
            self.bad_message(f"trades: {err}", "trades")
        feed = self._seq.feed
        mine = self.currency
        for t in rows:
            if mine and t.currency != mine:   # trades.option.USDC carries every linear base's trades
                self.counts["trade_other_currency"] += 1
                continue
            perp = False
            if not is_option(t.instrument):
                if not is_perpetual(t.instrument):
                    self.counts["trade_not_option"] += 1
                    continue
                perp = True
            r = feed(t.instrument, t.trade_seq)
            if r is None:
                pass
            elif type(r) is TradeGap:
                self.counts["trade_gaps"] += 1
                if self.on_trade_gap is not None:
                    self.on_trade_gap(r, self._last_trade_at.get(t.instrument), t.timestamp)
            else:
                self.counts["trade_duplicates"] += 1
                continue
            self._last_trade_at[t.instrument] = t.timestamp
            if perp:
                self.counts["perpetual_trades"] += 1
                self.sink(parse.perpetual_trade(t))
                continue
            self.counts["trades"] += 1
            self.sink(t)

    def seed_trades(self, last_seqs: dict[str, int]) -> None:
        """Baselines from the database, so a restart sees (and backfills) what it missed."""
        for inst, seq in last_seqs.items():
            self._seq.seed(inst, seq)

    def advance_trades(self, instrument: str, seqs: list[int]) -> int | None:
        """Trades fetched over REST (a backfill): the baseline moves over the contiguous run only."""
        return self._seq.advance(instrument, seqs)

    # -- books -----------------------------------------------------------------------------------

    def _book(self, channel: str, data: Any) -> None:
        name = data.get("instrument_name") if type(data) is dict else None
        if type(name) is str and not is_option(name) and not is_perpetual(name):
            self.counts["book_not_recorded"] += 1   # a combo's or a dated future's book: no relation of ours
            return
        if channel.count(".") == 4:   # book.{inst}.{group}.{depth}.{interval}: price buckets, not levels
            self.counts["book_grouped_not_recorded"] += 1
            return
        step = self._chain.feed(data)
        inst = step.instrument
        status = step.status
        book: _Book | None
        if status == BookStatus.SNAPSHOT:
            book = self._books[inst] = _Book()
        elif status == BookStatus.OK:
            book = self._books.get(inst)
            if book is None:  # cannot happen after a snapshot; be safe
                return
        elif status == BookStatus.RESUBSCRIBE:
            self.counts["book_breaks"] += 1
            self._books.pop(inst, None)
            if self.on_book_break is not None:
                self.on_book_break(channel, step)
            return
        else:  # duplicate, or waiting for the snapshot we asked for
            self.counts["book_dropped"] += 1
            return
        _apply(book.bids, data.get("bids", []))
        _apply(book.asks, data.get("asks", []))
        book.change_id = step.change_id
        self.counts["book"] += 1
        ts = parse.ms_to_datetime(data.get("timestamp"))
        if book.emitted_at is None or ts - book.emitted_at >= self.book_every:
            book.emitted_at = ts
            self.sink(self._snapshot(inst, book, ts))

    def _snapshot(self, inst: str, book: _Book, ts: datetime) -> BookDepth:
        n = self.depth_levels
        bids = sorted(book.bids.items(), key=lambda kv: -kv[0])[:n]
        asks = sorted(book.asks.items())[:n]
        cls = OptionBookDepth if is_option(inst) else BookDepth
        return cls(ts, inst, parse.currency_of(inst), book.change_id, n,
                   [p for p, _ in bids], [a for _, a in bids], [p for p, _ in asks], [a for _, a in asks],
                   bids[0][0] if bids else None, asks[0][0] if asks else None)

    def reset_books(self) -> None:
        """A new connection: every book starts again from its snapshot."""
        self._chain.reset_all()
        self._books.clear()

    def forget(self, instrument: str) -> None:
        """An expired instrument: drop its state."""
        self._seq.forget(instrument)
        self._chain.reset(instrument)
        self._books.pop(instrument, None)
        self._last_quote.pop(instrument, None)
        self._last_trade_at.pop(instrument, None)
