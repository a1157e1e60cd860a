"""`collector db import-legacy`: the Docker collector's database into ours, table by table.

Connects to both, reads the source's catalog, creates our tables of a currency the source has and we
lack (``collector_ensure_currency``), then copies each table (engine.copy_table) with a bar on stderr,
and prints the final table (report.py) on stdout. ``--dry-run`` prints what would be imported instead.
The source is only read (its session is read-only).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence, TextIO

import psycopg
from psycopg import sql

from collector.legacy import catalog, engine, progress, report, source
from collector.legacy.catalog import Catalog, LegacyError, Table
from collector.store import db

DEFAULT_BATCH_ROWS = 50_000
DEFAULT_JOBS = 2  # a big table is copied as this many time ranges at once


def source_id(conn: psycopg.Connection) -> str:
    """The source database as the progress table names it: host:port/dbname (no credentials)."""
    info = conn.info
    return f"{info.host}:{info.port}/{info.dbname}"


def select_tables(cat: Catalog, names: Sequence[str]) -> list[Table]:
    if not names:
        return cat.tables
    known = {t.name: t for t in cat.tables}
    wanted = [n.strip() for item in names for n in item.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise LegacyError(f"--tables: {', '.join(unknown)} not among the source's importable tables "
                          f"({', '.join(known) or 'none'})")
    return [t for t in cat.tables if t.name in wanted]


def _connect_target(dsn: str) -> psycopg.Connection:
    conn = db.connect(dsn, autocommit=True, application="deribit-collector-import")
    if not db.one(conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL "
                               "AND to_regclass('collector_currencies') IS NOT NULL"))[0]:
        conn.close()
        raise LegacyError("DATABASE_URL is not a collector database yet: run `collector db migrate` first")
    conn.execute("SET synchronous_commit = off")  # a lost last commit is re-read: the mark is in it too
    conn.execute("SET temp_buffers = '64MB'")    # a batch's staging rows stay in memory (before any temp table)
    conn.autocommit = False
    return conn


def ensure_currencies(tgt: psycopg.Connection, tables: Sequence[Table], dry_run: bool) -> list[str]:
    """Currencies the source has and we lack: created (``collector_ensure_currency``); their names."""
    have = {r[0] for r in tgt.execute("SELECT currency FROM collector_currencies")}
    new = sorted({t.currency for t in tables if t.currency and t.currency not in have})
    if not dry_run:
        for cur in new:
            with tgt.transaction():
                tgt.execute(sql.SQL("SELECT collector_ensure_currency({})").format(sql.Literal(cur)))
    return new


def run(source_dsn: str, target_dsn: str, *, tables: Sequence[str] = (), dry_run: bool = False,
        exact: bool = False, full: bool = False, jobs: int = DEFAULT_JOBS, batch_rows: int = DEFAULT_BATCH_ROWS,
        kill_after_batches: int | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """0 when every table was imported (rejected rows included: they are reported), 1 when a table
    failed, 2 when nothing could start (the source or ours is not what it must be)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        src = source.connect_source(source_dsn)
    except psycopg.OperationalError as exc:
        print(f"collector: cannot reach the legacy database: {str(exc).strip()}", file=err)
        return 2
    try:
        with src, _connect_target(target_dsn) as tgt:
            tgt.autocommit = True  # bookkeeping only: the copies have connections of their own
            cat = catalog.read(src)
            chosen = select_tables(cat, tables)
            ident = source_id(src)
            if dry_run:
                return _dry_run(src, tgt, cat, chosen, ident, exact, out)
            progress.ensure(tgt)
            created = ensure_currencies(tgt, chosen, dry_run=False)
            opts = _Options(source_dsn, lambda: _connect_target(target_dsn), ident, jobs, batch_rows, full,
                            kill_after_batches)
            results = [_one(src, tgt, cat, t, opts, err) for t in chosen]
            report.final(out, results, cat, created)
            return 1 if any(r.error for r in results) else 0
    except LegacyError as exc:
        print(f"collector: import-legacy: {exc}", file=err)
        return 2
    except psycopg.OperationalError as exc:
        print(f"collector: import-legacy: a database went away: {str(exc).strip()} (run again to resume)", file=err)
        return 1
    except KeyboardInterrupt:
        print("collector: import-legacy: interrupted; the batches committed so far stay: run the same command "
              "again to go on", file=err)
        return 130


@dataclass(frozen=True)
class _Options:
    source_dsn: str
    connect_target: Callable[[], psycopg.Connection]
    ident: str
    jobs: int
    batch_rows: int
    full: bool
    kill_after_batches: int | None


def _one(src: psycopg.Connection, tgt: psycopg.Connection, cat: Catalog, t: Table, opts: _Options,
         err: TextIO) -> engine.Result:
    result = engine.Result(t.name, t.target)
    if t.missing:
        result.note = f"not imported: no column {', '.join(t.missing)}"
        return result
    parts = progress.load(tgt, opts.ident, t.name)
    total = catalog.estimate(src, t.name, cat.timescaledb)
    if not parts or opts.full:
        parts = progress.define(tgt, opts.ident, t.name, t.target,
                                engine.plan(src, t, opts.jobs, total, opts.batch_rows))
    elif total is not None:
        total = max(total - sum(p.rows_read for p in parts), 0) or None
    resumed = [p.high_water for p in parts if p.high_water is not None]
    bar = progress.Bar(f"{t.name} -> {t.target}", total, out=err)
    t0 = time.monotonic()
    try:
        engine.copy_table(opts.source_dsn, opts.connect_target, t, opts.ident, parts, batch_rows=opts.batch_rows,
                          bar=bar, result=result, kill_after_batches=opts.kill_after_batches)
        if resumed:
            marks = ", ".join(f"{hw:%Y-%m-%d %H:%M:%S}" for hw in resumed)
            result.note = (f"rows after {marks} only (imported before)" if all(p.finished for p in parts)
                           else f"resumed from {marks}")
    except LegacyError as exc:
        result.error = str(exc)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        result.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    finally:
        bar.close()
        result.seconds = time.monotonic() - t0
    return result


def _dry_run(src: psycopg.Connection, tgt: psycopg.Connection, cat: Catalog, chosen: Sequence[Table], ident: str,
             exact: bool, out: TextIO) -> int:
    have = progress.exists(tgt)
    new = ensure_currencies(tgt, chosen, dry_run=True)
    rows = []
    for t in chosen:
        parts = progress.load(tgt, ident, t.name) if have else []
        if exact:
            count: int | None = sum(catalog.exact(src, t.name, engine.where(p)) for p in parts) if parts \
                else catalog.exact(src, t.name, sql.SQL(""))
        else:
            count = catalog.estimate(src, t.name, cat.timescaledb)
        rows.append((t, count, parts))
    report.dry_run(out, rows, cat, new, exact)
    return 0
