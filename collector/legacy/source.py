"""The legacy side of a copy: a read-only session, and the Reader thread that streams one query's
binary COPY rows and hands them over in whole batches (never decoding a row: only the 8 bytes of its
timestamp, for the batch's range)."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import chain
from typing import Iterator, Union

import psycopg
from psycopg import sql

from collector.legacy.catalog import LegacyError
from collector.store import db

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
TRAILER = b"\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
Buffer = Union[bytes, bytearray, memoryview]


def _timestamp(field8: bytes) -> datetime:
    return _PG_EPOCH + timedelta(microseconds=int.from_bytes(field8, "big", signed=True))


def _rows(out: psycopg.Copy) -> Iterator[Buffer]:
    """The source's rows, one binary COPY tuple each (its header taken off the first)."""
    it = iter(out)
    first = next(it, None)
    if first is None:
        return iter(())
    head = bytes(first[:19])
    if head[:11] != HEADER[:11]:
        raise LegacyError("the source's COPY output is not PostgreSQL's binary format")
    skip = 19 + int.from_bytes(head[15:19], "big")
    rest = first[skip:]
    return chain([rest], it) if len(rest) else it


@dataclass
class Batch:
    data: bytearray              # binary COPY tuples, whole rows
    rows: int
    lo: datetime | None          # the first and last non-NULL timestamp
    hi: datetime | None


class Reader(threading.Thread):
    """Reads the source's COPY on its own connection and hands whole batches over a queue of two, so the
    source and our database work at the same time (memory: three batches at most)."""

    def __init__(self, dsn: str, query: sql.Composed, batch_rows: int, batch_bytes: int) -> None:
        super().__init__(name="legacy-reader", daemon=True)
        self.dsn, self.query, self.batch_rows, self.batch_bytes = dsn, query, batch_rows, batch_bytes
        self.batches: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=2)
        self.stopping = threading.Event()
        self.conn: psycopg.Connection | None = None

    def run(self) -> None:
        try:
            with connect_source(self.dsn) as conn:
                self.conn = conn
                if not self.stopping.is_set():
                    self._read(conn)
            self._put(None)
        except BaseException as exc:  # handed to the importing thread, which raises it
            self._put(exc)

    def _put(self, item: Batch | BaseException | None) -> None:
        while not self.stopping.is_set():
            try:
                self.batches.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _read(self, conn: psycopg.Connection) -> None:
        limit_rows, limit_bytes = self.batch_rows, self.batch_bytes
        with conn.cursor().copy(self.query) as out:
            buf = bytearray()
            n = 0
            lo = hi = -1  # offsets of the first / last row with a timestamp
            for row in _rows(out):
                if len(row) == 2:  # the trailer (the iteration ends after it)
                    continue
                if row[2] != 0xFF:  # a NULL timestamp's length is -1 (they come last, and are rejected)
                    hi = len(buf)
                    if lo < 0:
                        lo = hi
                buf += row
                n += 1
                if n >= limit_rows or len(buf) >= limit_bytes:
                    self._put(_batch(buf, n, lo, hi))
                    if self.stopping.is_set():
                        return
                    buf, n, lo, hi = bytearray(), 0, -1, -1
            if n:
                self._put(_batch(buf, n, lo, hi))

    def stop(self) -> None:
        """Ends the read early (the importing side failed): the source's COPY is cancelled."""
        self.stopping.set()
        if self.conn is not None and self.is_alive():
            try:
                self.conn.cancel_safe()
            except psycopg.Error:
                pass
        self.join(timeout=10)


def _batch(buf: bytearray, n: int, lo: int, hi: int) -> Batch:
    return Batch(buf, n, _timestamp(bytes(buf[lo + 6:lo + 14])) if lo >= 0 else None,
                 _timestamp(bytes(buf[hi + 6:hi + 14])) if hi >= 0 else None)


def connect_source(dsn: str) -> psycopg.Connection:
    """A session on the legacy database: read-only, UTC."""
    conn = db.connect(dsn, autocommit=True, application="deribit-collector-import")
    conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    conn.execute("SET TimeZone = 'UTC'")
    return conn
