"""The stream's side of the writer: a bounded in-memory queue flushed by size or age.

``put()`` never blocks and never waits for the database: records are appended to a list, and a
flusher task hands batches to :class:`BatchStore` in a worker thread (COPY, or the spool when the
database is away). Memory is bounded by ``max_rows``: when the queue is full (the flusher is behind),
the oldest pending rows are moved straight to the spool. When a flush has been stuck for ``stall_s``
(a database that hangs instead of failing), the spool takes the rows beyond one batch at once, so memory
stays flat through the stall instead of growing up to ``max_rows``. Only when the spool is full too are rows
dropped, and then loudly: an error log, the ``dropped`` counter (shown in ``collector_status``) and a
``data_gaps`` row per table with the time range lost, written once the database takes writes again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import datetime
from typing import Iterable

from collector.records import DataGap, Record, table_of
from collector.store.spool import SpoolFull
from collector.store.writer import BatchStore, overflow_gap

log = logging.getLogger(__name__)


class WriteQueue:
    """Owns a BatchStore; run :meth:`run` as a task, :meth:`put` records, :meth:`close` at the end."""

    def __init__(self, store: BatchStore, *, batch_rows: int = 5000, max_age_s: float = 1.0,
                 max_rows: int = 200_000, max_batch_rows: int | None = None, stall_s: float = 5.0) -> None:
        self.store = store
        self.batch_rows = batch_rows
        self.max_age_s = max_age_s
        self.max_rows = max(max_rows, batch_rows)
        self.max_batch_rows = max_batch_rows or max(batch_rows * 4, 20_000)
        self.stall_s = stall_s
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

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, record: Record) -> None:
        if not self._pending:
            self._first_at = time.monotonic()
        self._pending.append(record)
        n = len(self._pending)
        if n >= self.batch_rows:
            self._wake.set()
            if n >= self.max_rows or (n >= self.max_batch_rows and self._stalled()):
                self._spill()

    def _stalled(self) -> bool:
        started = self._flush_started
        return started is not None and time.monotonic() - started > self.stall_s

    def _spill(self, count: int | None = None) -> None:
        """The queue is full: move the oldest rows (half by default) to the spool — a local file
        write, no database — or, when the spool is full too, drop them loudly."""
        rows = self._pending[: len(self._pending) // 2 if count is None else count]
        del self._pending[: len(rows)]
        groups: dict[type, list[Record]] = defaultdict(list)
        for r in rows:
            groups[type(r)].append(r)
        step = self.max_batch_rows  # segments no bigger than a batch: replaying one never holds more
        for rtype, group in groups.items():
            for i in range(0, len(group), step):
                part = group[i:i + step]
                try:
                    self.store.spill(part)
                except SpoolFull:
                    self._drop(part)

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
        """Flush forever (until :meth:`close`): by size, or when the oldest row is ``max_age_s`` old."""
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
            await self._flush_once()

    async def _flush_once(self) -> None:
        async with self._flush_lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
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
            self.last_flush_ok = time.monotonic()
            if result.overflow:
                self._drop(result.overflow)
        except Exception as err:  # noqa: BLE001 - keep the rows; the caller's watchdog sees no progress
            log.exception("flush_failed", extra={"error": str(err)[:300]})
            self._pending[:0] = batch
            await asyncio.sleep(1.0)
        finally:
            self._flush_started = None

    def state(self) -> str:
        if self._dropped_ranges or (self.dropped and self.store.spool.is_full()):
            return "overflow"
        if not self.store.stats.db_up or self.store.spool.bytes:
            return "degraded"
        return "stopping" if self._closing else "running"

    async def close(self, timeout_s: float = 8.0) -> None:
        """Flush what is pending (to the database or the spool) within ``timeout_s``."""
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
        while self._pending and time.monotonic() < deadline:
            await self._flush_once()
        if self._pending:  # out of time: the spool is local and fast
            self._spill(len(self._pending))
