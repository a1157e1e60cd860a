"""The stream's side of the writer: a bounded in-memory queue flushed by size or age.

``put()`` never blocks and never waits for the database: records are appended to a list, and a
flusher task hands batches to :class:`BatchStore` in a worker thread (COPY, or the spool when the
database is away). Memory is bounded by ``max_rows``: when the queue is half full (the flusher is
behind), the oldest pending rows are handed to a spill thread that writes them to the spool (an fsync per
segment, off the event loop, so the reader keeps up with the socket). Rows are only ever in one place:
pending, in the flush in flight, or with the spill thread -- never in two, so nothing is written twice
and nothing is forgotten (:meth:`close` waits for both). Only when the queue is full *and* the spill
thread is still busy (the disk slower than the stream) does the loop write to the spool itself: that
blocks the reader (TCP backpressure) and keeps memory at ``max_rows``. When a flush has been stuck for
``stall_s`` (a database that hangs instead of failing), the spool takes the rows beyond one batch, so
memory stays flat through the stall instead of growing up to ``max_rows``. Only when the spool is full
too are rows dropped, and then loudly: an error log, the ``dropped`` counter (shown in
``collector_status``) and a ``data_gaps`` row per table with the time range lost, written once the
database takes writes again.

A flush that raises (the store absorbs connection problems itself: it spools) is judged by its cause.
A permanent one -- the SQL or the schema is wrong (:class:`SchemaMismatch`, psycopg's
ProgrammingError, DataError, IntegrityError, NotSupportedError): every retry would fail the same way --
moves every pending row to the spool, logs one error and ends :meth:`run` with :class:`WriterFailed`
(the job exits non-zero; systemd shows it; the rows replay once the database is fixed). Anything else is
transient: retried with capped exponential backoff, logged once with its traceback, then a summary a
minute while it lasts and one line when it clears, each attempt counted in ``store.stats.errors``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Iterable, Sequence

import psycopg

from collector.backoff import exponential
from collector.errors import CollectorError
from collector.records import DataGap, Record, table_of
from collector.store.spool import SpoolFull
from collector.store.staging import SchemaMismatch
from collector.store.writer import BatchStore, overflow_gap

log = logging.getLogger(__name__)

# what retrying the same batch cannot fix: the statement or the schema is wrong, not the connection
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    SchemaMismatch, psycopg.ProgrammingError, psycopg.DataError, psycopg.IntegrityError, psycopg.NotSupportedError)


class WriterFailed(CollectorError):
    """A flush failed for a permanent cause; the rows are in the spool and the writer stopped."""


def is_permanent(err: BaseException) -> bool:
    return isinstance(err, PERMANENT_ERRORS)


class WriteQueue:
    """Owns a BatchStore; run :meth:`run` as a task, :meth:`put` records, :meth:`close` at the end."""

    def __init__(self, store: BatchStore, *, batch_rows: int = 5000, max_age_s: float = 1.0,
                 max_rows: int = 200_000, max_batch_rows: int | None = None, stall_s: float = 5.0,
                 retry_initial_s: float = 1.0, retry_max_s: float = 30.0, summary_every_s: float = 60.0) -> None:
        self.store = store
        self.batch_rows = batch_rows
        self.max_age_s = max_age_s
        self.max_rows = max(max_rows, batch_rows)
        self.max_batch_rows = max_batch_rows or max(batch_rows * 4, 20_000)
        self.stall_s = stall_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.summary_every_s = summary_every_s
        self._flush_started: float | None = None   # monotonic start of the flush in flight
        self._pending: list[Record] = []
        self._first_at = 0.0            # monotonic time of the oldest pending record
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()   # one flush at a time: the store has one connection
        self._closing = False
        self.dropped = 0
        self._dropped_ranges: dict[str, list] = {}   # table -> [first ts, last ts, count]
        self._overflow_logged = False
        self.last_flush_ok = 0.0       # monotonic time of the last flush that committed or spooled
        # the spill thread: rows handed to it are out of _pending until they are on disk
        self._spill_pool: ThreadPoolExecutor | None = None
        self._spill_count_lock = threading.Lock()
        self._spilling = 0              # rows with the spill thread, not yet written
        self._spills: set[asyncio.Future] = set()
        self.spills_on_loop = 0         # times the loop had to spill itself (the spill thread was behind)
        # flush failures
        self.failed: BaseException | None = None   # the permanent cause that stopped the writer
        self.flush_errors = 0           # failed flush attempts (all causes), since the start
        self._failures = 0              # failed attempts in a row (the backoff's attempt)
        self._failing_since = 0.0
        self._summary_at = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def spilling(self) -> int:
        """Rows with the spill thread, not yet in the spool."""
        return self._spilling

    def put(self, record: Record) -> None:
        if not self._pending:
            self._first_at = time.monotonic()
        self._pending.append(record)
        n = len(self._pending)
        if n >= self.batch_rows:
            self._wake.set()
            held = n + self._spilling
            if held >= self.max_rows:
                self._shed(hard=True)
            elif held >= self.max_rows // 2 or (n >= self.max_batch_rows and self._stalled()):
                self._shed(hard=False)

    def _stalled(self) -> bool:
        started = self._flush_started
        return started is not None and time.monotonic() - started > self.stall_s

    def _shed(self, hard: bool) -> None:
        """Move the oldest half of the pending rows to the spool: through the spill thread when it is
        idle; with ``hard`` (the queue is full) and the thread still busy, on the loop itself."""
        if self._spilling == 0:
            self._spill_async(self._take(len(self._pending) // 2))
        elif hard:
            self.spills_on_loop += 1
            if self.spills_on_loop == 1 or self.spills_on_loop % 100 == 0:
                log.warning("spill_thread_behind", extra={"times": self.spills_on_loop, "spilling": self._spilling,
                                                          "action": "spilling on the event loop (backpressure)"})
            self._drop(self._write_spool(self._take(len(self._pending) // 2)))

    def _take(self, count: int) -> list[Record]:
        rows = self._pending[:count]
        del self._pending[:count]
        return rows

    def _spill_async(self, rows: list[Record]) -> None:
        if not rows:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): write here
            self._drop(self._write_spool(rows))
            return
        if self._spill_pool is None:
            self._spill_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spill")
        with self._spill_count_lock:
            self._spilling += len(rows)
        fut = loop.run_in_executor(self._spill_pool, self._spill_in_thread, rows)
        self._spills.add(fut)
        fut.add_done_callback(self._spilled)

    def _spill_in_thread(self, rows: list[Record]) -> list[Record]:
        try:
            return self._write_spool(rows)
        finally:
            with self._spill_count_lock:
                self._spilling -= len(rows)

    def _spilled(self, fut: asyncio.Future) -> None:
        """On the loop: count what the spool could not take (the thread returns it, never raises)."""
        self._spills.discard(fut)
        if not fut.cancelled():
            self._drop(fut.result())

    def _write_spool(self, rows: Sequence[Record]) -> list[Record]:
        """Write ``rows`` to the spool, in segments no bigger than a batch (replaying one never holds
        more); returns the rows the spool could not take. Any thread."""
        groups: dict[type, list[Record]] = defaultdict(list)
        for r in rows:
            groups[type(r)].append(r)
        step = self.max_batch_rows
        lost: list[Record] = []
        for group in groups.values():
            for i in range(0, len(group), step):
                part = group[i:i + step]
                try:
                    self.store.spill(part)
                except SpoolFull:
                    lost.extend(part)
                except Exception as err:  # noqa: BLE001 - a disk error: the rows are counted as dropped
                    log.error("spill_failed", extra={"rows": len(part), "error": repr(err)[:300],
                                                     "action": "dropping the rows; counted and recorded in data_gaps"})
                    lost.extend(part)
        return lost

    def _drop(self, rows: Iterable[Record]) -> None:
        by_table: dict[str, list[Record]] = defaultdict(list)
        for r in rows:
            by_table[table_of(r)].append(r)
        for table, group in by_table.items():
            self._drop_table(table, group)

    def _drop_table(self, table: str, rows: list[Record]) -> None:
        self.dropped += len(rows)
        ts = [t for r in rows if isinstance(t := getattr(r, "timestamp", None), datetime)]
        rng = self._dropped_ranges.setdefault(table, [min(ts), max(ts), 0] if ts else [None, None, 0])
        if ts:
            rng[0] = min(rng[0], *ts) if rng[0] else min(ts)
            rng[1] = max(rng[1], *ts) if rng[1] else max(ts)
        rng[2] += len(rows)
        if not self._overflow_logged:
            log.error("writer_overflow", extra={"table": table, "rows": len(rows),
                                                "spool_bytes": self.store.spool.bytes,
                                                "action": "dropping rows; they are counted and recorded in data_gaps"})
            self._overflow_logged = True

    def take_gaps(self) -> list[DataGap]:
        gaps = [overflow_gap(table, first, last, count) for table, (first, last, count) in self._dropped_ranges.items()
                if first is not None]
        self._dropped_ranges.clear()
        return gaps

    async def run(self) -> None:
        """Flush forever (until :meth:`close`): by size, or when the oldest row is ``max_age_s`` old.
        Raises :class:`WriterFailed` when a flush fails for a permanent cause."""
        while True:
            if not self._pending:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.max_age_s)
                except TimeoutError:
                    pass
            elif len(self._pending) < self.batch_rows and not self._closing:
                age = time.monotonic() - self._first_at
                if age < self.max_age_s:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=self.max_age_s - age)
                    except TimeoutError:
                        pass
            if self._closing and not self._pending:
                return
            retry_in = await self._flush_once()
            if retry_in:
                await asyncio.sleep(retry_in)

    async def _flush_once(self) -> float:
        """One batch; 0.0, or the backoff before the next try after a transient failure."""
        async with self._flush_lock:
            return await self._flush_locked()

    async def _flush_locked(self) -> float:
        if self.failed is not None:  # stopped: whatever comes now goes to the spool
            await self._spill_all()
            raise WriterFailed(f"the writer stopped: {self.failed}") from self.failed
        batch = self._pending[: self.max_batch_rows]
        del self._pending[: len(batch)]
        if self._pending:
            self._first_at = time.monotonic()
        if self._dropped_ranges and self.store.stats.db_up:
            batch.extend(self.take_gaps())
        self._flush_started = time.monotonic()
        write = asyncio.get_running_loop().run_in_executor(None, self.store.write, batch)
        try:
            # shielded: cancelling the flusher (at shutdown) must never cancel a write that has not
            # started in its thread yet -- the batch is out of _pending and would be lost silently
            result = await asyncio.shield(write)
        except Exception as err:  # noqa: BLE001 - judged below; the rows are kept either way
            self._pending[:0] = batch
            self.flush_errors += 1
            self.store.stats.errors += 1
            if is_permanent(err):
                await self._fail(err)
            return self._transient(err)
        finally:
            self._flush_started = None
        self.last_flush_ok = time.monotonic()
        if self._failures:
            log.warning("flush_recovered", extra={"failures": self._failures,
                                                  "failing_s": round(time.monotonic() - self._failing_since, 1)})
            self._failures = 0
        if result.overflow:
            self._drop(result.overflow)
        return 0.0

    def _transient(self, err: BaseException) -> float:
        now = time.monotonic()
        if self._failures == 0:
            self._failing_since = self._summary_at = now
            log.error("flush_failed", exc_info=err, extra={
                "error": str(err).strip()[:300], "error_type": type(err).__name__,
                "action": "retrying with backoff; the rows stay queued (the spool takes the overflow)"})
        elif now - self._summary_at >= self.summary_every_s:
            self._summary_at = now
            log.warning("flush_still_failing", extra={"failures": self._failures + 1,
                                                      "failing_s": round(now - self._failing_since, 1),
                                                      "error": str(err).strip()[:300]})
        delay = exponential(self._failures, self.retry_initial_s, self.retry_max_s)
        self._failures += 1
        return delay

    async def _fail(self, err: BaseException) -> None:
        self.failed = err
        log.error("writer_failed", extra={
            "error": str(err).strip()[:500], "error_type": type(err).__name__,
            "action": "stopping: the pending rows are kept in the spool; fix the database "
                      "(e.g. `collector db migrate`) and restart"})
        await self._spill_all()
        raise WriterFailed(f"a flush failed for a permanent cause ({type(err).__name__}): "
                           f"{str(err).strip()[:300]}") from err

    async def _spill_all(self) -> None:
        """Every pending row to the spool (in the spill thread) and wait for every spill in flight."""
        self._spill_async(self._take(len(self._pending)))
        await self._spills_done()

    async def _spills_done(self) -> None:
        while self._spills:
            await asyncio.gather(*list(self._spills), return_exceptions=True)
            await asyncio.sleep(0)  # the done callbacks run

    def state(self) -> str:
        if self.failed is not None:
            return "failed"
        if self._dropped_ranges or (self.dropped and self.store.spool.is_full()):
            return "overflow"
        if not self.store.stats.db_up or self.store.spool.bytes:
            return "degraded"
        return "stopping" if self._closing else "running"

    async def close(self, timeout_s: float = 8.0) -> None:
        """Flush what is pending (to the database or the spool) within ``timeout_s``; wait for the
        spill thread. Never raises for a failed writer: its rows go to the spool. When the spool holds
        rows (a write would replay them first, for as long as that takes), pending rows join the spool
        at once: the next start replays them."""
        self._closing = True
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        try:  # a flush in flight (the flusher's) finishes first: its rows are not in _pending
            await asyncio.wait_for(self._flush_lock.acquire(), timeout=timeout_s)
            self._flush_lock.release()
        except TimeoutError:
            log.error("flush_in_flight_at_close", extra={"timeout_s": timeout_s,
                                                         "action": "its rows reach the database or the spool "
                                                                   "when the write returns"})
        # a write replays the spool first (unbounded under overload): with a spool, the rows join it
        while self._pending and self.failed is None and time.monotonic() < deadline and not self.store.spool.bytes:
            try:
                retry_in = await self._flush_once()
            except WriterFailed:
                break
            if retry_in:
                await asyncio.sleep(max(0.0, min(retry_in, deadline - time.monotonic())))
        # out of time, or the writer failed: the spool is local and fast
        await self._spill_all()
        if self._spill_pool is not None:
            self._spill_pool.shutdown(wait=False)
            self._spill_pool = None
