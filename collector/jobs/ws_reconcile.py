"""The stream's trade reconcile: the last trade of an instrument is never lost.

A ``trade_seq`` jump is seen only when the instrument trades again; a trade that never arrives over the
stream and is followed by silence would be found only at the next restart. Every ``every_s`` seconds
(``WS_TRADES_RECONCILE_EVERY``) :class:`TradeReconcile` asks Deribit for the newest option trades of the
currency -- one ``get_last_trades_by_currency`` call per currency the options are listed under, paged
back by time (:func:`collector.jobs.backfill.by_time`) only when more trades happened since the last
pass than one page holds -- waits ``settle_s`` for frames still in flight, and compares each
instrument's newest ``trade_seq`` with the last one stored or seen (the pipeline's tracker):

* trades after the last one known are written, the tracker advanced, and a ``data_gaps`` row
  (cause ``trade_reconcile``, ``backfilled_at`` set) says so; when the page does not hold the whole run
  from the last known seq, the run is handed to :class:`~collector.jobs.ws_continuity.Continuity` as a
  ``trade_seq`` gap (fetched by sequence with retries; its ``data_gaps`` row has ``backfilled_at`` NULL
  if it cannot be recovered);
* an instrument with no baseline at all (none stored, none seen since the start) has every trade since
  the stream's start missing;
* "the first seq seen is the baseline": for an instrument whose baseline was not read from the database,
  trades before its first one seen after the start cannot be told from the stream. The first two passes
  that see such an instrument write again its trades since the start (the database's natural key absorbs
  those already stored; counted as ``rewritten``, no ``data_gaps`` row since none can be said to be
  missing), so these are recovered too; from then on the instrument is covered. Two, because a trade
  can become visible over REST after newer ones: the second pass's window overlaps the first's.

The window of a pass starts :data:`OVERLAP` before the newest trade the previous one saw, the first one at
the first connection -- in the exchange's time (``public/get_time`` once, at the first pass: trade
timestamps are Deribit's); the restart and disconnect backfills of :class:`Continuity` cover what
happened before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from collector.deribit import parse
from collector.deribit.frames import ParseError
from collector.deribit.instruments import currency, is_option
from collector.deribit.paging import PAGE
from collector.deribit.rest import DeribitError, RestClient
from collector.deribit.sequence import TradeGap
from collector.jobs import backfill
from collector.records import OptionTrade, Record, table_name

log = logging.getLogger("collector.jobs.ws")
UTC = timezone.utc
CAUSE = "trade_reconcile"
FORGET_AFTER = 3          # passes: an instrument absent from this many is dropped from ``known``
# each window starts this much before the newest trade the last pass saw: a trade may become visible over
# REST after newer ones (a late fill)
OVERLAP = timedelta(seconds=10)
SIGHTINGS = 2             # passes that write again an uncovered instrument's trades before its first seen


class TradeReconcile:
    """Periodic REST check of one currency's option trades against the stream's last ``trade_seq``."""

    def __init__(self, currency_code: str, put: Callable[[Record], None], rest: Callable[[], RestClient], *,
                 last_seq: Callable[[str], int | None], advance: Callable[[str, list[int]], Any],
                 on_gap: Callable[[TradeGap, datetime | None, datetime], None],
                 gap: Callable[..., None], every_s: float = 300.0, settle_s: float = 2.0,
                 count: int = PAGE, max_pages: int = 50, is_up: Callable[[], bool] = lambda: True) -> None:
        self.cur = currency_code
        self._put = put
        self._rest = rest
        self._last_seq = last_seq
        self._advance = advance
        self._on_gap = on_gap
        self._gap = gap
        self.every_s = every_s
        self.settle_s = settle_s
        self.count = count
        self.max_pages = max_pages
        self._is_up = is_up
        self._started = asyncio.Event()
        self._subscribed_at: float | None = None  # the stream's first subscription (wall clock)
        self._start: datetime | None = None       # ... in the exchange's time
        self._window: datetime | None = None      # where the next pass's window starts
        self._covered: set[str] = set()           # baselines known good (stored, or seen by SIGHTINGS passes)
        self._sightings: dict[str, int] = {}      # passes that saw an instrument not yet covered
        self._known: dict[str, int] = {}          # newest seq a pass saw, per instrument
        self._absent: dict[str, int] = {}
        self.passes = 0
        self.recovered = 0        # trades written that the stream had not delivered
        self.handed_on = 0        # runs handed to the continuity's by-sequence backfill
        self.rewritten = 0        # trades before a first-seen baseline, written again
        self.failures = 0

    # -- what the job says ------------------------------------------------------------------------

    def seeded(self, instruments: Iterable[str]) -> None:
        """Instruments whose baseline is the last stored trade (read at start-up)."""
        self._covered.update(instruments)

    def connected(self, subscribed_at: float) -> None:
        """A connection is subscribed; the first one starts the reconcile's clock."""
        if self._subscribed_at is None:
            self._subscribed_at = subscribed_at
            self._started.set()

    # -- the task -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Every ``every_s`` once the stream is up, for ever (a task of the job)."""
        await self._started.wait()
        while True:
            await asyncio.sleep(self.every_s)
            await self.reconcile_once()

    async def reconcile_once(self) -> None:
        if not self._is_up():
            return   # disconnected: the continuity's backfill of the dark period has it; the window stays
        try:
            trades = await asyncio.to_thread(self._fetch)
        except (DeribitError, ParseError) as err:
            self.failures += 1
            log.warning("trade_reconcile_failed", extra={"currency": self.cur, "error": str(err)[:300],
                                                         "action": "trying again at the next pass"})
            return
        await asyncio.sleep(self.settle_s)   # trades Deribit had but still on their way over the stream
        self._compare(trades)
        if trades and self._window is not None:
            self._window = max(self._window, max(t.timestamp for t in trades) - OVERLAP)
        self.passes += 1

    # -- fetch (worker thread) ----------------------------------------------------------------------

    def _fetch(self) -> list[OptionTrade]:
        """The option trades of the currency since the window's start: the newest page per listing
        currency, then (only when a page is full and reaches not back to the window) the rest by time."""
        c = currency(self.cur)
        out: dict[tuple[str, int], OptionTrade] = {}
        reach: datetime | None = None       # the oldest trade of a full page that stops short of the window
        errors: list[ParseError] = []
        with self._rest() as client:
            if self._start is None:
                assert self._subscribed_at is not None
                before = time.time()
                exchange_ms = client.get_time()
                if type(exchange_ms) is not int:
                    raise ParseError("get_time: expected an integer")
                offset_ms = exchange_ms - (before + time.time()) * 500.0
                self._start = self._window = datetime.fromtimestamp((self._subscribed_at * 1000.0 + offset_ms) / 1000.0,
                                                                    UTC)
            window = self._window
            assert window is not None
            for src in c.sources:
                result = client.get_last_trades_by_currency(src, kind="option", count=self.count, sorting="desc")
                if type(result) is not dict or type(result.get("trades")) is not list:
                    raise ParseError("get_last_trades_by_currency: expected {trades: [...], has_more}")
                page = [t for t in parse.trades(result["trades"], errors)
                        if is_option(t.instrument) and (src == c.code or c.owns(t.instrument))]
                for t in page:
                    out[(t.instrument, t.trade_seq)] = t
                if result.get("has_more") and page:
                    oldest = min(t.timestamp for t in page)
                    if oldest > window:
                        reach = oldest if reach is None else max(reach, oldest)
            if reach is not None:
                log.info("trade_reconcile_paging", extra={"currency": self.cur, "from": window.isoformat(),
                                                          "to": reach.isoformat()})
                for t in backfill.by_time(client, self.cur, window, reach, errors=errors, max_pages=self.max_pages):
                    out[(t.instrument, t.trade_seq)] = t
        for err in errors[:3]:
            log.warning("trade_reconcile_bad_trade", extra={"currency": self.cur, "error": str(err)[:200]})
        return sorted(out.values(), key=lambda t: (t.instrument, t.trade_seq))

    # -- compare (event loop) -----------------------------------------------------------------------

    def _compare(self, trades: list[OptionTrade]) -> None:
        by_inst: dict[str, list[OptionTrade]] = {}
        for t in trades:
            by_inst.setdefault(t.instrument, []).append(t)
        start = self._start or datetime.min.replace(tzinfo=UTC)
        for inst, ts in by_inst.items():
            last = self._last_seq(inst)
            if last is None:
                last = self._known.get(inst)
            newest = ts[-1].trade_seq
            if last is None:
                missing = [t for t in ts if t.timestamp >= start]
            else:
                missing = [t for t in ts if t.trade_seq > last]
            if missing:
                self._recover(inst, last, missing)
            if inst not in self._covered and last is not None:
                again = [t for t in ts if t.trade_seq <= last and t.timestamp >= start]
                for t in again:
                    self._put(t)
                self.rewritten += len(again)
            if inst not in self._covered:
                # covered after a second pass: its window overlaps the first's, so a trade before the first
                # one seen that became visible late is written too
                self._sightings[inst] = self._sightings.get(inst, 0) + 1
                if self._sightings[inst] >= SIGHTINGS:
                    self._covered.add(inst)
                    del self._sightings[inst]
            self._known[inst] = max(newest, last if last is not None else newest)
            self._absent.pop(inst, None)
        for inst in [i for i in self._known if i not in by_inst]:
            self._absent[inst] = self._absent.get(inst, 0) + 1
            if self._absent[inst] >= FORGET_AFTER:
                del self._known[inst], self._absent[inst]

    def _recover(self, inst: str, last: int | None, missing: list[OptionTrade]) -> None:
        seqs = [t.trade_seq for t in missing]
        first = last + 1 if last is not None else seqs[0]
        relation = table_name(OptionTrade, self.cur)
        if seqs != list(range(first, seqs[-1] + 1)):
            # the page holds not the whole run: fetch it by sequence (retries, and a data_gaps row either way)
            self.handed_on += 1
            self._on_gap(TradeGap(inst, first, seqs[-1]), None, missing[-1].timestamp)
            log.warning("trade_reconcile_missing", extra={"instrument": inst, "from_seq": first,
                                                          "to_seq": seqs[-1], "action": "fetching by sequence"})
            return
        for t in missing:
            self._put(t)
        self._advance(inst, seqs)
        self.recovered += len(missing)
        start = missing[0].timestamp
        if last is not None:
            start -= timedelta(milliseconds=1)
        self._gap(relation, inst, start, missing[-1].timestamp, CAUSE, True, datetime.now(UTC),
                  from_seq=first, to_seq=seqs[-1], missing_count=len(seqs),
                  details=f"{len(seqs)} trades never arrived over the stream; fetched over REST by the reconcile "
                          f"(last known seq {last})")
