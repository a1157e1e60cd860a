"""The batch writer: records -> binary COPY into a staging table -> INSERT … ON CONFLICT DO NOTHING.

:class:`BatchStore` is synchronous (the REST jobs call it directly; the stream's :class:`WriteQueue`
calls it from a worker thread). One call to :meth:`BatchStore.write` is one transaction covering every
table in the batch. Re-sending rows never duplicates them: the tables' natural keys absorb them.

When the database is unreachable (or goes away mid-flush), the batch goes to the :class:`Spool` and the
call returns normally; the next write after the database is back replays the spool first, oldest
segment first, each deleted only after its commit. When a batch fails because of its data (not the
connection), it is split until the bad rows are isolated: the good rows are written, the bad ones are
kept in ``<spool>/rejected/`` and counted; one bad row never costs a batch.

Nothing is lost silently: a replayed segment whose refused rows cannot be kept in ``rejected/`` stays in
the spool (not deleted, counted, logged; the next start tries again); a segment that cannot be decoded is
set aside by the spool and gets a ``data_gaps`` row (``cause = 'spool_corrupt'``); rows of a live write
that the database refuses and that cannot be kept either get one (``cause = 'rejected_unkept'``). Those
rows go out with the next write (to the database, or the spool).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

import psycopg

from collector.backoff import exponential
from collector import records as _records
from collector.records import RECORD_TYPES, DataGap, Record
from collector.store import db, status
from collector.store.staging import Groups, SchemaMismatch, StageTable, group, stage_table, table_name
from collector.store.spool import Segment, Spool, SpoolCorrupt, SpoolFull, SpoolUnwritable

log = logging.getLogger(__name__)

# the statement or the schema is at fault, not a row: isolating rows cannot help
_STATEMENT_ERRORS = (psycopg.ProgrammingError, psycopg.NotSupportedError)

__all__ = ["BatchStore", "SchemaMismatch", "WriteResult", "WriteStats", "group", "overflow_gap"]


@dataclass
class WriteStats:
    """Counters since the store was created (the status row and STATUS= line read these)."""

    inserted: int = 0        # new rows committed
    duplicates: int = 0      # rows already present (absorbed by the natural key)
    spooled: int = 0         # rows put in the spool
    replayed: int = 0        # rows committed from the spool
    rejected: int = 0        # rows the database refused because of their data
    errors: int = 0          # failed flush attempts (and spool writes the host refused, corrupt segments)
    corrupt_segments: int = 0   # spool segments that could not be decoded (set aside, in data_gaps)
    segments_kept: int = 0      # replayed segments kept because their refused rows could not be set aside
    rows_lost: int = 0          # rows refused by the database and kept nowhere (in data_gaps)
    last_write_at: datetime | None = None
    db_up: bool = False


@dataclass(frozen=True)
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    spooled: int = 0
    rejected: int = 0
    overflow: tuple[Record, ...] = ()   # rows neither committed nor spooled (the spool is full or unwritable)


@dataclass
class _Isolated:
    """What splitting a refused batch did."""

    inserted: int = 0
    staged: int = 0
    rejected: int = 0
    unkept: list[Record] = field(default_factory=list)   # refused, and rejected/ could not take them
    rest: Groups | None = None                           # not tried: the database went away


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
        self._gaps: list[DataGap] = []  # data_gaps rows of what this store lost; out with the next write
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
        conn = None
        try:
            conn = db.connect(self.dsn, autocommit=True)
            self._prepare(conn)
        except psycopg.Error as err:
            if conn is not None:
                conn.close()     # prepared badly: never left open behind a retry
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
            res = self._write(records)
            self._flush_gaps()
            return res

    def _write(self, records: Iterable[Record]) -> WriteResult:
        groups = group(records)
        if not groups:
            self.replay(self._replay_per_write)
            return WriteResult()
        conn = self._connection()
        if conn is not None and self._replay_per_write and self.spool.bytes:
            self._replay(self._replay_per_write)
        for key, rows in group(self._take_gaps()).items():
            groups[key].extend(rows)
        return self._store(groups)

    def _take_gaps(self) -> list[DataGap]:
        gaps, self._gaps = self._gaps, []
        return gaps

    def _flush_gaps(self) -> None:
        """This store's own data_gaps rows, now (they were found while the database answered)."""
        if self._gaps and self._connection() is not None:
            self._store(group(self._take_gaps()))

    def _store(self, groups: Groups) -> WriteResult:
        """Commit ``groups`` (isolating bad rows), or spool them while the database is away."""
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
            iso = self._isolate(groups, err)
            spooled = self._to_spool(iso.rest) if iso.rest else WriteResult()
            if iso.unkept:
                self._lost(iso.unkept, "rejected_unkept",
                           "refused by the database and not kept: the spool's rejected/ could not be written")
            done = self._count(iso.inserted, iso.staged, iso.rejected)
            return WriteResult(done.inserted, done.duplicates, spooled.spooled, iso.rejected, spooled.overflow)
        return self._count(inserted, staged)

    def _lost(self, rows: Sequence[Record], cause: str, details: str) -> None:
        """Rows kept nowhere: counted, one error line, a data_gaps row per table (with the next write)."""
        self.stats.rows_lost += len(rows)
        for (rtype, cur), part in group(rows).items():
            ts = [t for r in part if isinstance(t := getattr(r, "timestamp", None), datetime)]
            now = datetime.now(timezone.utc)
            relation = table_name((rtype, cur))
            self._gaps.append(DataGap(now, relation, "", cur or "", min(ts, default=now), max(ts, default=now),
                                      cause, False, missing_count=len(part), details=details))
            log.error("rows_lost", extra={"table": relation, "rows": len(part), "cause": cause, "details": details,
                                          "action": "recorded in data_gaps"})

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
            except SpoolFull as err:   # full, or the host refuses (the spool logged it once)
                if isinstance(err, SpoolUnwritable):
                    self.stats.errors += 1
                overflow.extend(rows)  # the caller decides: count, log, data_gaps
        with self._spooled_lock:
            self.stats.spooled += n
        return WriteResult(spooled=n, overflow=tuple(overflow))

    def spill(self, rows: Sequence[Record]) -> None:
        """Rows of one type straight to the spool, without the database (a full queue): the caller's
        thread, never waiting for a flush in flight. Raises SpoolFull (SpoolUnwritable included)."""
        try:
            self.spool.append(type(rows[0]).__table__, rows)
        except SpoolUnwritable:
            self.stats.errors += 1
            raise
        with self._spooled_lock:
            self.stats.spooled += len(rows)

    def _isolate(self, groups: Groups, err: psycopg.Error) -> _Isolated:
        """The batch failed because of its data: write what is good, keep the bad rows aside (the caller
        counts the commits and decides about ``rest`` and ``unkept``). A fault of the statement or the
        schema (ProgrammingError: a dropped column, a missing table) is no row's: every row would be
        rejected, so it is raised (the stream's queue then stops, the rows spooled)."""
        if isinstance(err, _STATEMENT_ERRORS):
            raise err
        log.error("batch_rejected_by_database", extra={"error": str(err).strip()[:300], "action": "isolating bad rows"})
        out = _Isolated()
        pending = [(key, rows) for key, rows in groups.items()]
        while pending:
            key, rows = pending.pop()
            conn = self._connection()
            if conn is None:  # the database went away while isolating: the caller keeps the rest safe
                out.rest = defaultdict(list)
                for k, r in [(key, rows), *pending]:
                    out.rest[k].extend(r)
                break
            try:
                i, s = self._commit(conn, {key: rows})
                out.inserted += i
                out.staged += s
            except psycopg.Error as e:
                if db.is_connection_error(e) or conn.closed:
                    self._mark_down(e)
                    pending.append((key, rows))
                elif isinstance(e, _STATEMENT_ERRORS):
                    raise
                elif len(rows) == 1:
                    out.rejected += 1
                    if not self._reject(key[0], rows, e):
                        out.unkept.extend(rows)
                else:
                    mid = len(rows) // 2
                    pending.extend([(key, rows[:mid]), (key, rows[mid:])])
        self.stats.rejected += out.rejected
        return out

    def _reject(self, rtype: type[Record], rows: Sequence[Record], err: psycopg.Error) -> bool:
        """Keep refused rows in ``rejected/``; False when they cannot be kept there."""
        if self._reject_spool is None:
            self._reject_spool = Spool(self.spool.dir / "rejected", max_bytes=1 << 62)
        try:
            seg = self._reject_spool.append(rtype.__table__, rows)
        except SpoolFull:   # the host refuses (logged once by the spool)
            self.stats.errors += 1
            log.error("row_rejected", extra={"table": rtype.__table__, "error": str(err).strip()[:300],
                                             "kept_in": None})
            return False
        log.error("row_rejected", extra={"table": rtype.__table__, "error": str(err).strip()[:300], "kept_in": str(seg.path)})
        return True

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
            done = self._replay(max_segments, max_seconds)
            self._flush_gaps()
            return done

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
            except SpoolCorrupt as bad:  # set aside by the spool: counted, and a data_gaps row
                self.stats.errors += 1
                self.stats.corrupt_segments += 1
                self._gaps.append(corrupt_gap(bad))
                continue
            except OSError as err:  # cannot be read (an I/O error): left where it is for the next start
                self.stats.errors += 1
                self.spool.skip(seg)
                log.error("spool_segment_unreadable", extra={"segment": str(seg.path), "error": str(err)[:300],
                                                             "action": "kept; not replayed again by this process"})
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
                iso = self._isolate(groups, err)
                self._count(iso.inserted, iso.staged, iso.rejected)
                if iso.rest is not None:  # the database went away: the whole segment waits for it
                    break
                if iso.unkept:
                    self._keep(seg, len(iso.unkept))
                    continue
            self.spool.remove(seg)
            self.stats.replayed += len(rows)
            done += len(rows)
        if done:
            log.info("spool_replayed", extra={"rows": done, "segments_left": len(self.spool)})
        return done

    def _keep(self, seg: Segment, unkept: int) -> None:
        """A segment whose refused rows could not be set aside: it is the only copy, so it stays."""
        self.stats.segments_kept += 1
        self.spool.skip(seg)
        log.error("spool_segment_kept", extra={"segment": str(seg.path), "rows_refused_unkept": unkept,
                                               "reason": "the refused rows could not be written to rejected/",
                                               "action": "segment not deleted; replayed again at the next start"})

    def flush_spool(self) -> bool:
        """Replay everything now; True when the spool is empty afterwards."""
        self.replay()
        return not self.spool.segments()


def overflow_gap(table: str, first: datetime, last: datetime, count: int) -> DataGap:
    """The data_gaps row that says rows were lost because the queue and the spool were both full."""
    return DataGap(timestamp=datetime.now(timezone.utc), relation=table, instrument="", currency="",
                   gap_start=first, gap_end=last, cause="writer_overflow", recoverable=False,
                   missing_count=count, details="queue full and spool full or unwritable; rows dropped")


def corrupt_gap(bad: SpoolCorrupt) -> DataGap:
    """The data_gaps row of a spool segment that could not be decoded (its rows are lost to the tables)."""
    seg = bad.segment
    rtype = _records.BY_TABLE.get(seg.table)
    relation = seg.table
    if rtype is not None and rtype.__per_currency__ and bad.currency:
        relation = _records.table_name(rtype, bad.currency)
    now = datetime.now(timezone.utc)
    start = bad.first or bad.written_at or now
    where = f"set aside in {bad.moved_to}" if bad.moved_to else f"left in place at {seg.path}"
    return DataGap(now, relation, "", bad.currency, start, bad.last or start, "spool_corrupt", False,
                   missing_count=bad.rows,
                   details=f"spool segment {seg.path.name} ({seg.size} bytes) could not be decoded "
                           f"({bad.error[:200]}); {where}; rows unknown" if bad.rows is None else
                           f"spool segment {seg.path.name} ({seg.size} bytes) could not be decoded "
                           f"({bad.error[:200]}); {where}")
