"""The stream's continuity: data_gaps rows, REST backfill of missed trades, one-channel book resubscribes.

:class:`Continuity` owns what it needs to say what is missing and to fetch back what Deribit still has:
the backfill queue, the moment the connection went dark, the baselines read at start-up, its counters.
The pipeline reports (a ``trade_seq`` jump, a book break), the connection reports (up, down); this acts.
Trades are fetched back -- by sequence for a jump, by time for a disconnected period or the time since
the last stored trade -- and written; each hole gets one ``data_gaps`` row, written once the fetch is
done (``backfilled_at`` set, or NULL when it failed for good after retries). Quotes and index ticks
cannot be fetched back: their holes are recorded with ``recoverable = false``.

A time backfill that stops at its page limit (``backfill_max_pages`` requests) is recorded as what it is:
the period it fetched as backfilled, the rest (from where it got to the end) as not (``backfilled_at``
NULL, ``details`` starting with "incomplete").

The wall clock can be stepped (NTP) while the connection is down: the dark period is therefore measured
with the monotonic ``clock`` and placed back from the newest wall-clock reading (the reconnect), so a
step creates neither a false hole nor an inverted one. A time window that still comes out inverted (the
local clock behind the newest stored trade at a restart) is closed with the exchange's time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Coroutine

from collector.backoff import exponential
from collector.deribit import parse
from collector.deribit.fields import ms_to_datetime
from collector.deribit.instruments import currency, is_option, is_perpetual
from collector.deribit.rest import DeribitError, RestClient
from collector.deribit.sequence import BookStep, TradeGap
from collector.deribit.session import ConnectInfo, DisconnectInfo
from collector.jobs import backfill
from collector.records import (
    DataGap, OptionBookDepth, OptionQuote, OptionTrade, PerpetualQuote, PerpetualTrade, Record, table_name,
)

log = logging.getLogger("collector.jobs.ws")
UTC = timezone.utc
MAX_ATTEMPTS = 5


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True)
class Backfill:
    kind: str                     # "seq" or "time"
    instrument: str
    start: datetime
    end: datetime
    from_seq: int | None = None
    to_seq: int | None = None
    cause: str = ""
    attempts: int = 0


class Continuity:
    """Gaps and backfill of one currency's stream."""

    def __init__(self, currency: str, put: Callable[[Record], None], rest: Callable[[], RestClient], *,
                 spawn: Callable[[Coroutine[Any, Any, Any], str], None],
                 resubscribe: Callable[[str], Awaitable[None]],
                 advance_trades: Callable[[str, list[int]], Any],
                 backfill_horizon_s: float = 86400.0, backfill_max_pages: int = 500,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cur = currency
        self._max_pages = backfill_max_pages
        self._clock = clock                     # monotonic: durations that a wall-clock step cannot change
        self._down_mono = 0.0                   # the monotonic time of that last frame
        self._put = put
        self._rest = rest
        self._spawn = spawn
        self._resubscribe_channel = resubscribe
        self._advance_trades = advance_trades
        self._horizon = timedelta(seconds=backfill_horizon_s)
        self._backfills: asyncio.Queue[Backfill] = asyncio.Queue()
        self._resubscribing: set[str] = set()
        self._down_since: float | None = None   # last frame time before the first unanswered disconnect
        self._stored_last_quote: datetime | None = None
        self._stored_last_trade: datetime | None = None
        self._stored_last_perp_quote: datetime | None = None
        self.gaps_recorded = 0
        self.backfilled_trades = 0

    def set_baselines(self, last_trade: datetime | None, last_quote: datetime | None,
                      last_perpetual_quote: datetime | None = None) -> None:
        """The newest stored trade and quote (read at start-up): a restart's holes start there."""
        self._stored_last_trade, self._stored_last_quote = last_trade, last_quote
        self._stored_last_perp_quote = last_perpetual_quote

    # -- what the connection says -----------------------------------------------------------------

    def connected(self, info: ConnectInfo) -> None:
        up = _utc(info.subscribed_at)
        quotes = table_name(OptionQuote, self.cur)
        if info.number == 1:
            if self._stored_last_quote is not None and self._stored_last_quote < up:
                self.gap(quotes, "", self._stored_last_quote, up, "restart", False,
                         details="quotes cannot be fetched back from Deribit")
            if self._stored_last_perp_quote is not None and self._stored_last_perp_quote < up:
                self.gap(PerpetualQuote.__table__, currency(self.cur).perpetual, self._stored_last_perp_quote, up,
                         "restart", False, details="quotes cannot be fetched back from Deribit")
            if self._stored_last_trade is not None:
                start = max(self._stored_last_trade, up - self._horizon)
                self._backfills.put_nowait(Backfill("time", "", start, up, cause="restart"))
        elif self._down_since is not None:
            dark = max(0.0, self._clock() - self._down_mono)   # how long it was dark, step-proof
            down = up - timedelta(seconds=dark)
            cause = "disconnect"
            self.gap(quotes, "", down, up, cause, False, details="quotes cannot be fetched back from Deribit")
            self.gap(PerpetualQuote.__table__, currency(self.cur).perpetual, down, up, cause, False,
                     details="quotes cannot be fetched back from Deribit (the perpetual's trades come back by "
                             "trade_seq when it trades again)")
            self.gap("index_prices", currency(self.cur).index_name, down, up, cause, False,
                     details="index ticks cannot be fetched back (rest job records 1/min)")
            self._backfills.put_nowait(Backfill("time", "", down - timedelta(seconds=1),
                                                up + timedelta(seconds=1), cause=cause))
        self._down_since = None

    def disconnected(self, info: DisconnectInfo) -> None:
        if self._down_since is None:
            self._down_since = last = info.last_frame_at or info.at
            self._down_mono = self._clock() - max(0.0, info.at - last)   # (two readings seconds apart)

    # -- what the pipeline says -------------------------------------------------------------------

    def gap(self, relation: str, instrument: str, start: datetime, end: datetime, cause: str,
            recoverable: bool, backfilled_at: datetime | None = None, **kw: Any) -> None:
        """One data_gaps row (through the queue) and its log line."""
        self.gaps_recorded += 1
        self._put(DataGap(datetime.now(UTC), relation, instrument, self.cur, start, end, cause, recoverable,
                          backfilled_at, **kw))
        log.warning("data_gap", extra={"relation": relation, "instrument": instrument, "cause": cause,
                                       "gap_start": start.isoformat(), "gap_end": end.isoformat(),
                                       "recoverable": recoverable, "backfilled": backfilled_at is not None})

    def on_trade_gap(self, gap: TradeGap, last_at: datetime | None, seen_at: datetime) -> None:
        self._backfills.put_nowait(Backfill("seq", gap.instrument, last_at or seen_at, seen_at,
                                            gap.from_seq, gap.to_seq, cause="trade_seq_jump"))

    def on_book_break(self, channel: str, step: BookStep) -> None:
        now = datetime.now(UTC)
        relation = "perpetuals_orderbook_depth" if not is_option(step.instrument) \
            else table_name(OptionBookDepth, self.cur)
        self.gap(relation, step.instrument, now, now, "book_change_gap", False,
                 details=f"{step.reason}; resubscribed {channel} for a fresh snapshot")
        if channel not in self._resubscribing:
            self._resubscribing.add(channel)
            self._spawn(self._resubscribe(channel), f"resubscribe {channel}")

    async def _resubscribe(self, channel: str) -> None:
        try:
            await self._resubscribe_channel(channel)
        except Exception as err:  # noqa: BLE001 - the next connection resubscribes everything anyway
            log.warning("resubscribe_failed", extra={"channel": channel, "error": str(err)[:300]})
        finally:
            self._resubscribing.discard(channel)

    # -- the backfill worker ----------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch what is queued, one at a time, for ever (a task of the job)."""
        while True:
            job = await self._backfills.get()
            try:
                if job.kind == "time" and job.end <= job.start:   # the local clock is behind the stored rows
                    job = await asyncio.to_thread(self._to_exchange_now, job)
                trades = await asyncio.to_thread(self._fetch, job)
            except DeribitError as err:
                if job.attempts < MAX_ATTEMPTS:
                    log.warning("backfill_retry", extra={"instrument": job.instrument, "error": str(err)[:200]})
                    self._spawn(self._requeue(job), "backfill-retry")
                else:
                    self._record(job, None, str(err))
                continue
            by_inst: dict[str, list[int]] = {}
            for t in trades:
                self._put(t)
                by_inst.setdefault(t.instrument, []).append(t.trade_seq)
            for inst, seqs in by_inst.items():
                self._advance_trades(inst, seqs)
            self.backfilled_trades += len(trades)
            self._record(job, trades, None)

    async def _requeue(self, job: Backfill) -> None:
        await asyncio.sleep(exponential(job.attempts + 1, 1.0, 60.0))
        self._backfills.put_nowait(Backfill(job.kind, job.instrument, job.start, job.end, job.from_seq,
                                            job.to_seq, job.cause, job.attempts + 1))

    def _to_exchange_now(self, job: Backfill) -> Backfill:
        """``job`` ending at the exchange's time (``public/get_time``) instead of the local clock's."""
        with self._rest() as client:
            now = client.get_time()
        if type(now) is not int:
            raise DeribitError(f"get_time: expected an integer, got {type(now).__name__}")
        end = max(ms_to_datetime(now), job.start)
        log.warning("clock_behind_stored_rows", extra={"cause": job.cause, "gap_start": job.start.isoformat(),
                                                       "local_end": job.end.isoformat(),
                                                       "exchange_end": end.isoformat()})
        return dataclasses.replace(job, end=end)

    def _fetch(self, job: Backfill) -> list[OptionTrade] | list[PerpetualTrade]:
        with self._rest() as client:
            if job.kind == "seq":
                assert job.from_seq is not None and job.to_seq is not None
                got = backfill.by_sequence(client, job.instrument, job.from_seq, job.to_seq)
                if is_perpetual(job.instrument):   # a perpetual's trades go to perpetuals_trades
                    return [parse.perpetual_trade(t) for t in got]
                return got
            return backfill.by_time(client, self.cur, job.start, job.end, max_pages=self._max_pages)

    def _record(self, job: Backfill, trades: list[OptionTrade] | list[PerpetualTrade] | None,
                error: str | None) -> None:
        relation = PerpetualTrade.__table__ if is_perpetual(job.instrument) else table_name(OptionTrade, self.cur)
        now = datetime.now(UTC)
        if job.kind == "seq":
            assert job.from_seq is not None and job.to_seq is not None
            missing = TradeGap(job.instrument, job.from_seq, job.to_seq).missing_count
            got = len(trades or ())
            complete = trades is not None and got >= missing
            details = (f"fetched {got} of {missing} trades over REST" if trades is not None
                       else f"backfill failed: {error}"[:500])
            start = min((t.timestamp for t in trades or ()), default=job.start)
            self.gap(relation, job.instrument, min(start, job.start), job.end, job.cause, True,
                     now if complete else None, from_seq=job.from_seq, to_seq=job.to_seq,
                     missing_count=missing, details=details)
        elif isinstance(trades, backfill.TimeTrades) and not trades.complete:
            # the page limit stopped it: what it fetched is backfilled, the rest is not (and says so)
            reached = max(job.start, min(trades.reached, job.end))
            log.warning("backfill_incomplete", extra={"cause": job.cause, "gap_start": job.start.isoformat(),
                                                      "gap_end": job.end.isoformat(), "reached": reached.isoformat(),
                                                      "requests": trades.pages, "trades": len(trades)})
            if reached > job.start:
                self.gap(relation, "", job.start, reached, job.cause, True, now, missing_count=len(trades),
                         details=f"fetched {len(trades)} trades over REST up to {reached.isoformat()}, where the "
                                 f"page limit stopped the backfill")
            self.gap(relation, "", reached, job.end, job.cause, True, None,
                     details=f"incomplete: the time backfill stopped at its page limit ({trades.pages} requests) "
                             f"at {reached.isoformat()}; the trades from there to the end were not fetched")
        else:
            details = (f"fetched {len(trades)} trades over REST for the period" if trades is not None
                       else f"backfill failed: {error}"[:500])
            self.gap(relation, "", job.start, job.end, job.cause, True, now if trades is not None else None,
                     missing_count=len(trades) if trades is not None else None, details=details)
