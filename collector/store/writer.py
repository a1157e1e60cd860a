"""The batch writer: records -> binary COPY into a staging table -> INSERT … ON CONFLICT DO NOTHING.

:class:`BatchStore` is synchronous (the REST jobs call it directly; the stream's :class:`WriteQueue`
calls it from a worker thread). One call to :meth:`BatchStore.write` is one transaction covering every
table in the batch. Re-sending rows never duplicates them: the tables' natural keys absorb them.

When the database is unreachable (or goes away mid-flush), the batch goes to the :class:`Spool` and the
call returns normally; the next write after the database is back replays the spool first, oldest
segment first, each deleted only after its commit. When a batch fails because of its data (not the
connection), it is split until the bad rows are isolated: the good rows are written, the bad ones are
kept in ``<spool>/rejected/`` and counted; one bad row never costs a batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

import psycopg

from collector.backoff import exponential
from collector.records import RECORD_TYPES, DataGap, Record
from collector.store import db, status
from collector.store.staging import Groups, SchemaMismatch, StageTable, group, stage_table, table_name
from collector.store.spool import Spool, SpoolCorrupt, SpoolFull

log = logging.getLogger(__name__)

__all__ = ["BatchStore", "SchemaMismatch", "WriteResult", "WriteStats", "group", "overflow_gap"]


@dataclass
class WriteStats:
    """Counters since the store was created (the status row and STATUS= line read these)."""

    inserted: int = 0        # new rows committed
    duplicates: int = 0      # rows already present (absorbed by the natural key)
    spooled: int = 0         # rows put in the spool
    replayed: int = 0        # rows committed from the spool
    rejected: int = 0        # rows the database refused because of their data
    errors: int = 0          # failed flush attempts
    last_write_at: datetime | None = None
    db_up: bool = False


@dataclass(frozen=True)
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    spooled: int = 0
    rejected: int = 0
    overflow: tuple[Record, ...] = ()   # rows neither committed nor spooled (the spool is full)


class BatchStore:
    """Idempotent batch writes with an outage spool. Calls are serialized by a lock (one connection)."""

    def __init__(self, dsn: str, spool: Spool, *, retry_initial_s: float = 0.5, retry_max_s: float = 5.0,
                 replay_segments_per_write: int = 8, clock: Callable[[], float] = time.monotonic) -> None:
        self.dsn = dsn
        self.spool = spool
        self.stats = WriteStats()
        self._conn: psycopg.Connection | None = None
        self._tables: dict[str, StageTable] = {}
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._failures = 0              # connection failures in a row: the backoff's attempt
        self._next_try = 0.0
        self._clock = clock
        self._replay_per_write = replay_segments_per_write
        self._down_logged = False
        self._reject_spool: Spool | None = None
        self._lock = threading.RLock()
        self._spooled_lock = threading.Lock()  # stats.spooled is counted by the writer and by spill()

    # -- connection -----------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection | None:
        """The live connection, or None while the database is down (retried with capped backoff)."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        now = self._clock()
        if now < self._next_try:
            return None
        try:
            conn = db.connect(self.dsn, autocommit=True)
            self._prepare(conn)
        except psycopg.Error as err:
            if not db.is_connection_error(err):
                raise
            self._mark_down(err)
            return None
        self._conn = conn
        self._failures = 0
        self.stats.db_up = True
        if self._down_logged:
            log.warning("database_back", extra={"spool_segments": len(self.spool), "spool_bytes": self.spool.bytes})
            self._down_logged = False
        return conn

    def _mark_down(self, err: BaseException) -> None:
        self.close()
        self.stats.db_up = False
        self.stats.errors += 1
        self._next_try = self._clock() + exponential(self._failures, self._retry_initial, self._retry_max)
        self._failures += 1
        if not self._down_logged:
            log.error("database_unavailable", extra={"error": str(err).strip()[:300], "action": "spooling"})
            self._down_logged = True

    def _prepare(self, conn: psycopg.Connection) -> None:
        """Check the shared tables and create their staging tables (per connection); the
        per-currency tables are prepared on first use."""
        self._tables.clear()
        for rtype in RECORD_TYPES:
            if not rtype.__per_currency__:
                self._prepare_table(conn, rtype, rtype.__table__)

    def _prepare_table(self, conn: psycopg.Connection, rtype: type[Record], name: str) -> StageTable:
        self._tables[name] = t = stage_table(conn, rtype, name)
        return t

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not raise
                pass
        self._conn = None

    # -- writing --------------------------------------------------------------------------------

    def write(self, records: Iterable[Record]) -> WriteResult:
        """Write one batch (any mix of record types) in one transaction, or spool it."""
        with self._lock:
            return self._write(records)

    def _write(self, records: Iterable[Record]) -> WriteResult:
        groups = group(records)
        if not groups:
            self.replay(self._replay_per_write)
            return WriteResult()
        conn = self._connection()
        if conn is not None and self._replay_per_write and self.spool.bytes:
            self.replay(self._replay_per_write)
            conn = self._connection()
        if conn is None:
            return self._to_spool(groups)
        try:
            inserted, staged = self._commit(conn, groups)
        except psycopg.Error as err:
            if db.is_connection_error(err) or conn.closed:
                self._mark_down(err)
                return self._to_spool(groups)
            self.stats.errors += 1
            return self._isolate(groups, err)
        return self._count(inserted, staged)

    def _commit(self, conn: psycopg.Connection, groups: Groups) -> tuple[int, int]:
        inserted = staged = 0
        tables = []
        for key in groups:
            name = table_name(key)
            tables.append(self._tables.get(name) or self._prepare_table(conn, key[0], name))
        with conn.transaction():
            with conn.cursor() as cur:
                for t, rows in zip(tables, groups.values()):
                    inserted += t.merge_rows(cur, rows)
                    staged += len(rows)
        return inserted, staged

    def _count(self, inserted: int, staged: int, rejected: int = 0) -> WriteResult:
        self.stats.inserted += inserted
        self.stats.duplicates += staged - inserted
        self.stats.last_write_at = datetime.now(timezone.utc)
        return WriteResult(inserted=inserted, duplicates=staged - inserted, rejected=rejected)

    def _to_spool(self, groups: Groups) -> WriteResult:
        n = 0
        overflow: list[Record] = []
        for (rtype, _cur), rows in groups.items():
            try:
                self.spool.append(rtype.__table__, rows)
                n += len(rows)
            except SpoolFull:
                overflow.extend(rows)  # the caller decides: count, log, data_gaps
        with self._spooled_lock:
            self.stats.spooled += n
        return WriteResult(spooled=n, overflow=tuple(overflow))

    def spill(self, rows: Sequence[Record]) -> None:
        """Rows of one type straight to the spool, without the database (a full queue): the caller's
        thread, never waiting for a flush in flight. Raises SpoolFull."""
        self.spool.append(type(rows[0]).__table__, rows)
        with self._spooled_lock:
            self.stats.spooled += len(rows)

    def _isolate(self, groups: Groups, err: psycopg.Error) -> WriteResult:
        """The batch failed because of its data: write what is good, keep the bad rows aside."""
        log.error("batch_rejected_by_database", extra={"error": str(err).strip()[:300], "action": "isolating bad rows"})
        inserted = staged = rejected = 0
        pending = [(key, rows) for key, rows in groups.items()]
        while pending:
            key, rows = pending.pop()
            conn = self._connection()
            if conn is None:  # the database went away while isolating: keep the rest safe
                rest: Groups = defaultdict(list)
                for k, r in [(key, rows), *pending]:
                    rest[k].extend(r)
                res = self._to_spool(rest)
                self.stats.rejected += rejected
                done = self._count(inserted, staged, rejected)
                return WriteResult(done.inserted, done.duplicates, res.spooled, rejected, res.overflow)
            try:
                i, s = self._commit(conn, {key: rows})
                inserted += i
                staged += s
            except psycopg.Error as e:
                if db.is_connection_error(e) or conn.closed:
                    self._mark_down(e)
                    pending.append((key, rows))
                elif len(rows) == 1:
                    self._reject(key[0], rows, e)
                    rejected += 1
                else:
                    mid = len(rows) // 2
                    pending.extend([(key, rows[:mid]), (key, rows[mid:])])
        self.stats.rejected += rejected
        return self._count(inserted, staged, rejected)

    def _reject(self, rtype: type[Record], rows: Sequence[Record], err: psycopg.Error) -> None:
        if self._reject_spool is None:
            self._reject_spool = Spool(self.spool.dir / "rejected", max_bytes=1 << 62)
        seg = self._reject_spool.append(rtype.__table__, rows)
        log.error("row_rejected", extra={"table": rtype.__table__, "error": str(err).strip()[:300], "kept_in": str(seg.path)})

    def report_status(self, job: str, state: str, **fields) -> bool:
        """Upsert this job's collector_status row; False (and nothing raised) while the database is down."""
        with self._lock:
            return self._report_status(job, state, **fields)

    def _report_status(self, job: str, state: str, **fields) -> bool:
        conn = self._connection()
        if conn is None:
            return False
        st = self.stats
        try:
            status.upsert_job(conn, job, state, last_write_at=st.last_write_at, rows_written=st.inserted,
                              rows_spooled=st.spooled, errors=st.errors, spool_bytes=self.spool.bytes, **fields)
        except psycopg.Error as err:
            if db.is_connection_error(err) or conn.closed:
                self._mark_down(err)
                return False
            raise
        return True

    # -- the spool ------------------------------------------------------------------------------

    def replay(self, max_segments: int | None = None, max_seconds: float | None = None) -> int:
        """Commit spooled segments, oldest first; stop at the first connection problem, after
        ``max_segments`` segments or once ``max_seconds`` have passed. Returns rows."""
        with self._lock:
            return self._replay(max_segments, max_seconds)

    def _replay(self, max_segments: int | None, max_seconds: float | None = None) -> int:
        done = 0
        until = None if max_seconds is None else self._clock() + max_seconds
        for n, seg in enumerate(self.spool.segments()):
            if max_segments is not None and n >= max_segments:
                break
            if until is not None and self._clock() >= until:
                break
            conn = self._connection()
            if conn is None:
                break
            try:
                rows = self.spool.load(seg)
            except FileNotFoundError:  # already replayed and removed
                continue
            except SpoolCorrupt:
                self.stats.errors += 1
                continue
            if not rows:
                self.spool.remove(seg)
                continue
            groups = group(rows)
            try:
                inserted, staged = self._commit(conn, groups)
                self._count(inserted, staged)
            except psycopg.Error as err:
                if db.is_connection_error(err) or conn.closed:
                    self._mark_down(err)
                    break
                self.stats.errors += 1
                self._isolate(groups, err)
            self.spool.remove(seg)
            self.stats.replayed += len(rows)
            done += len(rows)
        if done:
            log.info("spool_replayed", extra={"rows": done, "segments_left": len(self.spool)})
        return done

    def flush_spool(self) -> bool:
        """Replay everything now; True when the spool is empty afterwards."""
        self.replay()
        return not self.spool.segments()


def overflow_gap(table: str, first: datetime, last: datetime, count: int) -> DataGap:
    """The data_gaps row that says rows were lost because the queue and the spool were both full."""
    return DataGap(timestamp=datetime.now(timezone.utc), relation=table, instrument="", currency="",
                   gap_start=first, gap_end=last, cause="writer_overflow", recoverable=False,
                   missing_count=count, details="queue and spool full; rows dropped")
