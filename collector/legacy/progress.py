"""Where an import stands: per source table, a high-water mark kept in our database, and the bar on
stderr.

``legacy_import_progress`` (ours, created here on first use: it is the import's bookkeeping, not data)
holds one row per (source database, source table, part): a big table is copied as a few time ranges at
once (``--jobs``), each with the newest source timestamp whose batch was committed, updated in the same
transaction as the rows it covers. A run that was killed resumes each part from there (inclusive: rows
sharing that timestamp are read again and skipped by our keys); a run after a complete one reads only
what is newer.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import click
import psycopg

from collector.store import db

DDL = """
CREATE TABLE IF NOT EXISTS legacy_import_progress (
    source       text        NOT NULL,   -- host:port/dbname of the legacy database
    source_table text        NOT NULL,
    part         integer     NOT NULL,   -- the table is copied as a few time ranges at once
    part_from    timestamptz,            -- [part_from, part_until): NULL = open
    part_until   timestamptz,
    target_table text        NOT NULL,
    high_water   timestamptz,            -- rows of the part up to here are in; the next run reads from here on
    rows_read    bigint      NOT NULL DEFAULT 0,   -- totals over every run
    rows_written bigint      NOT NULL DEFAULT 0,
    rows_skipped bigint      NOT NULL DEFAULT 0,
    rows_rejected bigint     NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,            -- the last run that read the part to its end
    PRIMARY KEY (source, source_table, part)
)"""


@dataclass
class Part:
    part: int
    part_from: datetime | None
    part_until: datetime | None
    high_water: datetime | None
    rows_read: int
    finished: bool

    @property
    def last(self) -> bool:
        return self.part_until is None


def ensure(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute(DDL)


def load(conn: psycopg.Connection, source: str, table: str) -> list[Part]:
    """The table's parts in time order (none: never imported)."""
    return [Part(*r) for r in conn.execute(
        "SELECT part, part_from, part_until, high_water, rows_read, finished_at IS NOT NULL FROM legacy_import_progress "
        "WHERE source = %s AND source_table = %s ORDER BY part", (source, table)).fetchall()]


def define(conn: psycopg.Connection, source: str, table: str, target: str,
           bounds: list[tuple[datetime | None, datetime | None]]) -> list[Part]:
    """A fresh start for the table: its parts are these time ranges, nothing read yet."""
    with conn.transaction():
        conn.execute("DELETE FROM legacy_import_progress WHERE source = %s AND source_table = %s", (source, table))
        for i, (lo, hi) in enumerate(bounds):
            conn.execute("INSERT INTO legacy_import_progress (source, source_table, part, part_from, part_until, "
                         "target_table) VALUES (%s, %s, %s, %s, %s, %s)", (source, table, i, lo, hi, target))
    return load(conn, source, table)


def advance(conn: psycopg.Connection, source: str, table: str, part: int, high_water: datetime | None,
            read: int, written: int, skipped: int, rejected: int) -> None:
    """In the batch's transaction: the part's mark moves to the batch's last timestamp."""
    conn.execute("UPDATE legacy_import_progress SET high_water = coalesce(%s, high_water), finished_at = NULL, "
                 "rows_read = rows_read + %s, rows_written = rows_written + %s, rows_skipped = rows_skipped + %s, "
                 "rows_rejected = rows_rejected + %s, updated_at = now() "
                 "WHERE source = %s AND source_table = %s AND part = %s",
                 (high_water, read, written, skipped, rejected, source, table, part))


def finish(conn: psycopg.Connection, source: str, table: str, part: int) -> None:
    with conn.transaction():
        conn.execute("UPDATE legacy_import_progress SET finished_at = now() "
                     "WHERE source = %s AND source_table = %s AND part = %s", (source, table, part))


def exists(conn: psycopg.Connection) -> bool:
    return db.one(conn.execute("SELECT to_regclass('legacy_import_progress') IS NOT NULL"))[0]


class Bar:
    """Rows, rows/s and ETA of one table on stderr: click's bar on a terminal; elsewhere (a log, a pipe)
    one plain line per ``every_s`` and at the end (also on a terminal when the
    size is unknown: the table was never analysed)."""

    def __init__(self, label: str, total: int | None, out: TextIO | None = None, every_s: float = 2.0) -> None:
        self.out = out or sys.stderr
        self.label = label
        self.total = total
        self.rows = 0
        self.t0 = time.monotonic()
        self.every_s = every_s
        self.last_line = self.t0
        self.bar: Any = None
        self.lock = threading.Lock()  # the parts of a table report from their threads
        if self.out.isatty() and total:
            self.bar = click.progressbar(length=total, label=label, file=self.out, show_pos=True,
                                         item_show_func=lambda _: self._rate_text())
            self.bar.__enter__()

    def rate(self) -> float:
        return self.rows / max(time.monotonic() - self.t0, 1e-6)

    def _rate_text(self) -> str:
        return f"{self.rate():,.0f} rows/s"

    def eta_text(self) -> str:
        if not self.total or self.rows >= self.total:
            return "?"
        left = (self.total - self.rows) / max(self.rate(), 1e-6)
        return f"{int(left // 60)}m{int(left % 60):02d}s"

    def update(self, n: int) -> None:
        with self.lock:
            self.rows += n
            if self.bar is not None:
                self.bar.update(n, self.label)
                return
            now = time.monotonic()
            if now - self.last_line >= self.every_s:
                self.last_line = now
                self._line()

    def _line(self, done: bool = False) -> None:
        total = f"/~{self.total:,}" if self.total else ""
        tail = "done" if done else f"ETA {self.eta_text()}"
        print(f"{self.label}: {self.rows:,}{total} rows, {self._rate_text()}, {tail}", file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        else:
            self._line(done=True)
