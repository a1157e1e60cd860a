"""Disk: the filesystems of the database and the spool, each table's size (compressed and not), the size
history (``size_samples``, one row per monitor run), growth per day and the days left, the newest backup."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable

import psycopg

from collector.store import db

log = logging.getLogger(__name__)

GROWTH_WINDOW_DAYS = 7
MIN_HISTORY_S = 3600.0      # growth is only computed over at least an hour of samples
LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")


def filesystem(what: str, path: Path | str | None) -> dict[str, Any]:
    """``df`` of the filesystem holding ``path`` (its nearest existing parent): used % as df shows it."""
    out: dict[str, Any] = {"what": what, "path": str(path) if path is not None else None,
                           "total_bytes": None, "free_bytes": None, "used_pct": None}
    if path is None:
        return out
    p = Path(path).absolute()
    while True:
        try:
            st = os.statvfs(p)
            break
        except OSError:
            if p.parent == p:
                return out
            p = p.parent
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    out.update(total_bytes=st.f_blocks * st.f_frsize, free_bytes=avail,
               used_pct=round(100.0 * used / (used + avail), 1) if used + avail else None)
    return out


def data_directory(conn: psycopg.Connection) -> tuple[str | None, str]:
    """The server's data directory when the server is on this host and says it (superuser or
    pg_read_all_settings), else None with the reason."""
    host = conn.info.host or ""
    if not (host.startswith("/") or host in LOCAL_HOSTS):
        return None, f"the database is on another host ({host})"
    try:
        with conn.transaction():
            path = db.one(conn.execute("SELECT current_setting('data_directory')"))[0]
    except psycopg.errors.InsufficientPrivilege:
        return None, "the role may not read data_directory (grant it pg_read_all_settings)"
    return path, ""


def _has_timescaledb(conn: psycopg.Connection) -> bool:
    return bool(db.one(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"))[0])


def table_sizes(conn: psycopg.Connection, relations: Iterable[str]) -> list[dict[str, Any]]:
    """Each existing table's bytes on disk (with indexes and TOAST); on a hypertable also what its
    compressed chunks take and took before compression."""
    tsdb = _has_timescaledb(conn)
    hyper: set[str] = set()
    if tsdb:
        hyper = {r for (r,) in conn.execute(
            "SELECT hypertable_name::text FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public'")}
    out = []
    for rel in relations:
        kind = conn.execute("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)", (rel,)).fetchone()
        if kind is None or kind[0] not in ("r", "p"):
            continue   # missing, or a view
        row: dict[str, Any] = {"relation": rel, "hypertable": rel in hyper, "total_bytes": None,
                               "compressed_chunks": None, "chunks": None,
                               "compressed_bytes": None, "before_compression_bytes": None}
        if rel in hyper:
            row["total_bytes"] = db.one(conn.execute(
                "SELECT coalesce(sum(total_bytes), 0)::bigint FROM hypertable_detailed_size(%s::regclass)", (rel,)))[0]
            stats = conn.execute(
                "SELECT total_chunks, number_compressed_chunks, before_compression_total_bytes, "
                "after_compression_total_bytes FROM hypertable_compression_stats(%s::regclass)", (rel,)).fetchone()
            if stats is not None:
                row.update(chunks=stats[0], compressed_chunks=stats[1], before_compression_bytes=stats[2],
                           compressed_bytes=stats[3])
        else:
            row["total_bytes"] = db.one(conn.execute("SELECT pg_total_relation_size(%s::regclass)", (rel,)))[0]
        out.append(row)
    return out


def database_bytes(conn: psycopg.Connection) -> int:
    return int(db.one(conn.execute("SELECT pg_database_size(current_database())"))[0])


def record_sample(conn: psycopg.Connection, total: int, sizes: list[dict[str, Any]]) -> bool:
    """One size_samples row; False (logged) when the table is missing or the role may not insert."""
    rels = {s["relation"]: s["total_bytes"] for s in sizes}
    try:
        with conn.transaction():
            conn.execute("INSERT INTO size_samples (timestamp, database_bytes, relations) VALUES (now(), %s, %s) "
                         "ON CONFLICT DO NOTHING", (total, json.dumps(rels)))
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege) as err:
        log.warning("size_sample_not_recorded", extra={"error": str(err).strip()[:300]})
        return False
    return True


def growth(conn: psycopg.Connection, total_now: int, sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Bytes per day over the last 7 days of samples (the oldest of them against now), overall and per
    table; None while there is less than an hour of history."""
    out: dict[str, Any] = {"window_days": GROWTH_WINDOW_DAYS, "history_s": None, "bytes_per_day": None,
                           "relations": {}}
    if db.one(conn.execute("SELECT to_regclass('size_samples') IS NULL"))[0]:
        return out
    row = conn.execute(
        "SELECT database_bytes, relations, extract(epoch FROM now() - timestamp) FROM size_samples "
        "WHERE timestamp > now() - make_interval(days => %s) ORDER BY timestamp LIMIT 1",
        (GROWTH_WINDOW_DAYS,)).fetchone()
    if row is None:
        return out
    then_total, then_rels, age_s = row[0], row[1] or {}, float(row[2])
    out["history_s"] = round(age_s, 1)
    if age_s < MIN_HISTORY_S:
        return out
    per_day = 86400.0 / age_s
    out["bytes_per_day"] = round((total_now - then_total) * per_day)
    for s in sizes:
        before = then_rels.get(s["relation"])
        if before is not None and s["total_bytes"] is not None:
            out["relations"][s["relation"]] = round((s["total_bytes"] - before) * per_day)
    return out


def days_left(fs: dict[str, Any], bytes_per_day: int | None) -> float | None:
    """Days until the filesystem is full at this growth; None when unknown or not growing."""
    if fs.get("free_bytes") is None or not bytes_per_day or bytes_per_day <= 0:
        return None
    return round(fs["free_bytes"] / bytes_per_day, 1)


def newest_backup(directory: Path) -> dict[str, Any]:
    """The newest ``*.dump`` in the backup directory and its age."""
    out: dict[str, Any] = {"dir": str(directory), "newest": None, "age_s": None, "count": 0}
    try:
        dumps = [(p.stat().st_mtime, p) for p in directory.glob("*.dump") if p.is_file()]
    except OSError:
        return out
    if dumps:
        mtime, path = max(dumps)
        out.update(newest=path.name, age_s=round(time.time() - mtime, 1), count=len(dumps))
    return out
