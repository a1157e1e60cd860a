"""The stream's continuity work: data_gaps rows, REST backfill of missed trades, one-channel book resubscribes.

A mixin of :class:`~collector.jobs.ws.WsJob` (it uses the job's queue, pipeline, session and REST
settings): the pipeline reports, this acts. Trades Deribit still has are fetched back -- by sequence for
a ``trade_seq`` jump, by time for a disconnected period or the time since the last stored trade -- and
written; each hole gets one ``data_gaps`` row, written once the fetch is done (``backfilled_at`` set, or
NULL when it failed for good after retries).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from collector.deribit.rest import DeribitError
from collector.deribit.sequence import BookStep, TradeGap
from collector.jobs import backfill, chain
from collector.records import DataGap

log = logging.getLogger("collector.jobs.ws")
UTC = timezone.utc


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


class GapsMixin:
    def _gap(self, relation: str, instrument: str, start: datetime, end: datetime, cause: str,
             recoverable: bool, backfilled_at: datetime | None = None, **kw: Any) -> None:
        self.gaps_recorded += 1
        self.queue.put(DataGap(datetime.now(UTC), relation, instrument, self.cur, start, end, cause, recoverable,
                               backfilled_at, **kw))
        log.warning("data_gap", extra={"relation": relation, "instrument": instrument, "cause": cause,
                                       "gap_start": start.isoformat(), "gap_end": end.isoformat(),
                                       "recoverable": recoverable, "backfilled": backfilled_at is not None})

    def _on_trade_gap(self, gap: TradeGap, last_at: datetime | None, seen_at: datetime) -> None:
        self._backfills.put_nowait(Backfill("seq", gap.instrument, last_at or seen_at, seen_at,
                                             gap.from_seq, gap.to_seq, cause="trade_seq_jump"))

    def _on_book_break(self, channel: str, step: BookStep) -> None:
        now = datetime.now(UTC)
        relation = "perpetuals_orderbook_depth" if not chain.is_option(step.instrument) \
            else f"{self.cur.lower()}_option_orderbook_depth"
        self._gap(relation, step.instrument, now, now, "book_change_gap", False,
                  details=f"{step.reason}; resubscribed {channel} for a fresh snapshot")
        if channel not in self._resubscribing:
            self._resubscribing.add(channel)
            self._spawn(self._resubscribe(channel), f"resubscribe {channel}")

    async def _resubscribe(self, channel: str) -> None:
        try:
            await self.session.resubscribe(channel)
        except Exception as err:  # noqa: BLE001 - the next connection resubscribes everything anyway
            log.warning("resubscribe_failed", extra={"channel": channel, "error": str(err)[:300]})
        finally:
            self._resubscribing.discard(channel)

    async def _backfill_loop(self) -> None:
        while True:
            job = await self._backfills.get()
            try:
                trades = await asyncio.to_thread(self._fetch_backfill, job)
            except DeribitError as err:
                if job.attempts < 5:
                    log.warning("backfill_retry", extra={"instrument": job.instrument, "error": str(err)[:200]})
                    self._spawn(self._requeue(job), "backfill-retry")
                else:
                    self._record_backfill(job, None, str(err))
                continue
            by_inst: dict[str, list[int]] = {}
            for t in trades:
                self.queue.put(t)
                by_inst.setdefault(t.instrument, []).append(t.trade_seq)
            for inst, seqs in by_inst.items():
                self.pipeline.seq.advance(inst, seqs)
            self.backfilled_trades += len(trades)
            self._record_backfill(job, trades, None)

    async def _requeue(self, job: Backfill) -> None:
        await asyncio.sleep(min(60.0, 2.0 ** (job.attempts + 1)))
        self._backfills.put_nowait(Backfill(job.kind, job.instrument, job.start, job.end, job.from_seq,
                                             job.to_seq, job.cause, job.attempts + 1))

    def _fetch_backfill(self, job: Backfill) -> list:
        with self._rest() as client:
            if job.kind == "seq":
                return backfill.by_sequence(client, job.instrument, job.from_seq, job.to_seq)
            return backfill.by_time(client, self.cur, job.start, job.end)

    def _record_backfill(self, job: Backfill, trades: list | None, error: str | None) -> None:
        relation = f"{self.cur.lower()}_option_trades"
        now = datetime.now(UTC)
        if job.kind == "seq":
            missing = job.to_seq - job.from_seq + 1
            got = len(trades or ())
            complete = trades is not None and got >= missing
            details = (f"fetched {got} of {missing} trades over REST" if trades is not None
                       else f"backfill failed: {error}"[:500])
            start = min((t.timestamp for t in trades or ()), default=job.start)
            self._gap(relation, job.instrument, min(start, job.start), job.end, job.cause, True,
                      now if complete else None, from_seq=job.from_seq, to_seq=job.to_seq,
                      missing_count=missing, details=details)
        else:
            details = (f"fetched {len(trades)} trades over REST for the period" if trades is not None
                       else f"backfill failed: {error}"[:500])
            self._gap(relation, "", job.start, job.end, job.cause, True, now if trades is not None else None,
                      missing_count=len(trades) if trades is not None else None, details=details)
