"""The copy of one source table into ours, in bounded memory whatever its size.

A big table is copied as a few time ranges at once (``plan``: ``--jobs`` equal slices of its
timestamps), each a part with its own mark, thread and connections (``copy_part``). For a part, the
source runs one ``COPY (SELECT …) TO STDOUT (FORMAT BINARY)`` in timestamp order (mapping.select: every
value already converted and cast to our column's type), which PostgreSQL sends one row per message,
read by a thread of its own (Reader). Those rows go unchanged, ``batch_rows`` (or ``batch_bytes``) at a
time, into a temporary staging table of ours (``COPY … FROM STDIN (FORMAT BINARY)``); each batch is
then merged (a plain INSERT, or ``INSERT … ON CONFLICT DO NOTHING`` once a duplicate shows: our keys
decide what a duplicate is), its rejected rows are counted by reason, the part's high-water mark moves
to the batch's last timestamp, and all of it commits at once. Python never decodes a row (only the 8
bytes of its timestamp); memory is three batches per part at most."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import psycopg
from psycopg import sql

from collector.legacy import mapping, progress
from collector.legacy.catalog import LegacyError, Table
from collector.legacy.source import HEADER, TRAILER, Reader
from collector.store import db


@dataclass
class Result:
    """What one source table gave in this run."""

    source: str
    target: str
    read: int = 0
    written: int = 0
    skipped: int = 0                     # duplicates by our keys (or a trade we already have)
    rejected: Counter = field(default_factory=Counter)   # reason -> rows
    seconds: float = 0.0
    error: str | None = None
    note: str = ""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def add(self, read: int, written: int, skipped: int, rejected: Counter) -> None:
        with self.lock:  # the parts of a table add from their threads
            self.read += read
            self.written += written
            self.skipped += skipped
            self.rejected.update(rejected)


def target_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """Our table's columns and their exact types (empty when it does not exist)."""
    return dict(conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())


def _merge(cur: psycopg.Cursor, insert: sql.Composed, merge: sql.Composed, params: dict | None) -> int:
    """The batch's new rows into ours; their number. A plain INSERT first (in a savepoint: the common
    case, a batch of rows we do not have, is then about twice as fast as ON CONFLICT's speculative
    insertion); the first duplicate sends the batch through ``INSERT … ON CONFLICT DO NOTHING``."""
    cur.execute("SAVEPOINT legacy_batch")
    try:
        n = cur.execute(insert, params).rowcount
    except psycopg.errors.UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT legacy_batch")
        n = cur.execute(merge, params).rowcount
    cur.execute("RELEASE SAVEPOINT legacy_batch")
    return n


def plan(src: psycopg.Connection, table: Table, jobs: int, estimate: int | None,
         batch_rows: int) -> list[tuple[datetime | None, datetime | None]]:
    """The time ranges a table is copied as: ``jobs`` equal slices of its timestamps (open at both
    ends), or one when it is small or of unknown size."""
    if jobs <= 1 or estimate is None or estimate < 2 * batch_rows:
        return [(None, None)]
    q = sql.SQL("SELECT min(timestamp)::timestamptz, max(timestamp)::timestamptz FROM {}").format(
        sql.Identifier(table.name))
    lo, hi = db.one(src.execute(q))
    if lo is None or hi is None or lo == hi:
        return [(None, None)]
    cuts = [lo + (hi - lo) * i / jobs for i in range(1, jobs)]
    return list(zip([None, *cuts], [*cuts, None]))


def copy_table(source_dsn: str, connect_target: Callable[[], psycopg.Connection], table: Table, source_id: str,
               parts: list[progress.Part], *, batch_rows: int, bar: progress.Bar, result: Result,
               batch_bytes: int = 8 << 20, kill_after_batches: int | None = None) -> None:
    """Import ``table`` into ``result``: each of its parts on a thread (and connections) of its own.
    Counts grow batch by batch, so a caller sees how far it got; the first failure is raised once
    every part has stopped."""
    errors: list[BaseException] = []

    def one(part: progress.Part) -> None:
        try:
            with connect_target() as tgt:
                copy_part(source_dsn, tgt, table, source_id, part, batch_rows=batch_rows, bar=bar, result=result,
                          batch_bytes=batch_bytes, kill_after_batches=kill_after_batches)
        except BaseException as exc:
            errors.append(exc)

    if len(parts) == 1:
        one(parts[0])
    else:
        threads = [threading.Thread(target=one, args=(p,), name=f"legacy-part-{p.part}", daemon=True) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # (a join with a timeout lets Ctrl-C through)
                t.join(0.5)
    if errors:
        raise errors[0]


def copy_part(source_dsn: str, tgt: psycopg.Connection, table: Table, source_id: str, part: progress.Part, *,
              batch_rows: int, bar: progress.Bar, result: Result, batch_bytes: int = 8 << 20,
              kill_after_batches: int | None = None) -> None:
    """One time range of ``table``, from its mark on, batch by batch."""
    kind = table.kind
    types = target_types(tgt, table.target)
    lacking = [c for c in kind.columns if c not in types]
    if lacking:
        raise LegacyError(f"our table {table.target} lacks {', '.join(lacking)} (or does not exist): "
                          "run `collector db migrate`")
    cols = sql.SQL(", ").join(map(sql.Identifier, kind.columns))
    target = sql.Identifier(table.target)
    stage = sql.Identifier(f"_legacy_stage_{table.target}"[:63])
    with tgt.transaction():
        tgt.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA")
                    .format(stage, cols, target))
        tgt.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS _reject text").format(stage))
    copy_in = sql.SQL("COPY {} ({}, _reject) FROM STDIN (FORMAT BINARY)").format(stage, cols)
    known: sql.Composable = sql.SQL("")
    if kind.trade:  # the same trade already stored (by the live collector, with its real trade_seq)
        known = sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {} o WHERE o.timestamp >= %(lo)s AND o.timestamp <= %(hi)s "
                        "AND o.timestamp = s.timestamp AND o.instrument = s.instrument AND o.trade_id = s.trade_id)"
                        ).format(target)
    insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} s WHERE s._reject IS NULL{}").format(
        target, cols, sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in kind.columns), stage, known)
    merge = sql.SQL("{} ON CONFLICT DO NOTHING").format(insert)
    count_rejects = sql.SQL("SELECT _reject, count(*) FROM {} WHERE _reject IS NOT NULL GROUP BY 1").format(stage)
    query = mapping.select(kind, table.source, types, where(part))

    reader = Reader(source_dsn, query, batch_rows, batch_bytes)
    reader.start()
    tcur = tgt.cursor()
    batches = 0
    try:
        while True:
            item = reader.batches.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            with tcur.copy(copy_in) as tc:
                tc.write(HEADER)
                tc.write(item.data)
                tc.write(TRAILER)
            if batches == kill_after_batches:
                os.kill(os.getpid(), signal.SIGKILL)  # hidden test hook: killed with a batch half done
            written = _merge(tcur, insert, merge, {"lo": item.lo, "hi": item.hi} if kind.trade else None)
            rejected: Counter[str] = Counter(dict(tcur.execute(count_rejects).fetchall()))
            skipped = item.rows - written - sum(rejected.values())
            progress.advance(tgt, source_id, table.name, part.part, item.hi, item.rows, written, skipped,
                             sum(rejected.values()))
            tgt.commit()
            batches += 1
            result.add(item.rows, written, skipped, rejected)
            bar.update(item.rows)
    except BaseException:
        reader.stop()
        tgt.rollback()
        raise
    reader.join()
    progress.finish(tgt, source_id, table.name, part.part)


def where(part: progress.Part) -> sql.Composable:
    """The part's rows still to read: its time range, from its mark on (after it when the part was read
    to its end: every row at the mark is in; else the batch that ended there may have left rows of the
    same timestamp to the next). NULL timestamps (rejected) are the last part's, until it is finished."""
    conds = []
    if part.high_water is not None:
        conds.append(sql.SQL("t.timestamp {} {}").format(sql.SQL(">" if part.finished else ">="),
                                                         sql.Literal(part.high_water)))
    elif part.part_from is not None:
        conds.append(sql.SQL("t.timestamp >= {}").format(sql.Literal(part.part_from)))
    if part.part_until is not None:
        conds.append(sql.SQL("t.timestamp < {}").format(sql.Literal(part.part_until)))
    if not conds:
        return sql.SQL("")
    where = sql.SQL(" AND ").join(conds)
    if part.last and not part.finished:
        where = sql.SQL("({}) OR t.timestamp IS NULL").format(where)
    return sql.SQL(" WHERE {}").format(where)
