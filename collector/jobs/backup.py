"""`collector db backup` and `collector db restore`: pg_dump's custom format, TimescaleDB-aware.

Backup: ``pg_dump -Fc`` of the database (the pg_dump of the server's major version) into
``DIR/collector-<dbname>-<UTC time>.dump``: written as ``.partial``, fsynced, renamed, the directory
fsynced, so a file with the final name is always a whole dump. Then only the newest ``keep`` dumps of
that database are kept. One JSON log line says the size and the time. On a TimescaleDB database
pg_dump warns about circular foreign keys among TimescaleDB's own catalog tables (hypertable, chunk,
continuous_agg...): TimescaleDB's documented procedure is a plain pg_dump and those warnings are
expected; they are counted, not repeated. Any other warning is logged as it is.

Restore: into the EMPTY database DATABASE_URL names (anything of someone's making in it is refused,
nothing is changed). A dump with TimescaleDB gets TimescaleDB's procedure: the extension created (when
missing), ``timescaledb_pre_restore()``, pg_restore, ``timescaledb_post_restore()``; that takes a
superuser (pre_restore sets a superuser-only parameter, the restore writes TimescaleDB's catalog), so
another role is refused up front. pg_restore runs as one transaction (a failure leaves the database as
empty as it was), with the dump's grants; a superuser restores the dump's owners too, another role (the
owner role, on plain PostgreSQL) becomes the owner of everything; the extensions the target already
has are not created again. Database-level settings are not part of a pg_dump: the collector's one
(``search_path`` with ``collector_compat``, 0002) is set again. Then ANALYZE.

The password of DATABASE_URL travels in the child's environment (PGPASSWORD), never in argv.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg import sql

from collector.config import Settings
from collector.errors import CollectorError
from collector.store import db, pgtools

log = logging.getLogger(__name__)

_STAMP = "%Y%m%dT%H%M%SZ"
_NAME_RE = re.compile(r"^collector-(?P<db>.+)-(?P<stamp>\d{8}T\d{6}Z)\.dump$")
_CIRCULAR = "circular foreign-key constraints on this table"


class BackupFailed(CollectorError, RuntimeError):
    """A backup or a restore did not happen (the message says why)."""


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    seconds: float
    database: str
    timescaledb: str | None     # the extension's version in the dumped database, None: plain PostgreSQL
    pruned: tuple[Path, ...]


def backup_name(dbname: str, when: datetime) -> str:
    return f"collector-{dbname}-{when.astimezone(timezone.utc).strftime(_STAMP)}.dump"


def backups(directory: Path, dbname: str | None = None) -> list[tuple[datetime, Path]]:
    """The finished backups in ``directory`` (of ``dbname``, or of any database), oldest first."""
    out: list[tuple[datetime, Path]] = []
    if not directory.is_dir():
        return out
    for p in directory.iterdir():
        m = _NAME_RE.match(p.name)
        if m and (dbname is None or m.group("db") == dbname) and p.is_file():
            when = datetime.strptime(m.group("stamp"), _STAMP).replace(tzinfo=timezone.utc)
            out.append((when, p))
    return sorted(out)


def newest_backup(directory: Path, dbname: str | None = None) -> tuple[datetime, Path] | None:
    """The newest finished backup (its time from its name) or None: for `collector db status`."""
    found = backups(directory, dbname)
    return found[-1] if found else None


def prune(directory: Path, dbname: str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups of ``dbname``; returns what was deleted."""
    old = [p for _, p in backups(directory, dbname)][:-keep] if keep > 0 else []
    for p in old:
        p.unlink(missing_ok=True)
    return old


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _server(conn: psycopg.Connection) -> tuple[str, int, str | None]:
    ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return conn.info.dbname, conn.info.server_version // 10000, ext[0] if ext else None


def split_warnings(stderr: str, catalog: set[str]) -> tuple[int, list[str]]:
    """pg_dump's stderr -> (how many of its circular-foreign-key warnings name only tables of ``catalog``
    (TimescaleDB's own: expected), every other line). Such a warning is a line, then ``detail:`` lines
    naming the tables, then ``hint:`` lines."""
    expected, others = 0, []
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    i = 0
    while i < len(lines):
        if _CIRCULAR not in lines[i]:
            others.append(lines[i])
            i += 1
            continue
        j, named = i + 1, []
        while j < len(lines) and re.match(r"^pg_dump: (detail|hint): ", lines[j]):
            if lines[j].startswith("pg_dump: detail: "):
                named.append(lines[j].removeprefix("pg_dump: detail: ").strip())
            j += 1
        if named and all(n in catalog for n in named):
            expected += 1
        else:
            others.extend(lines[i:j])
        i = j
    return expected, others


def make_backup(dsn: str, directory: Path, keep: int, *, bindir: Path | None = None,
                now: datetime | None = None) -> Backup:
    """One dump into ``directory`` and the pruning; raises BackupFailed (nothing left behind)."""
    with db.connect(dsn, autocommit=True) as conn:
        dbname, major, tsdb = _server(conn)
        catalog = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = '_timescaledb_catalog'")} if tsdb else set()
    pg_dump = pgtools.program("pg_dump", major, bindir)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / backup_name(dbname, now or datetime.now(timezone.utc))
    if final.exists():
        raise BackupFailed(f"{final} exists already (one backup per second)")
    partial = final.with_name(final.name + ".partial")
    target, env = pgtools.child_connection(dsn)
    t0 = time.monotonic()
    try:
        res = subprocess.run([pg_dump.path, "--format=custom", "--no-password", "--file", str(partial),
                              "--dbname", target], env=env, capture_output=True, text=True, umask=0o077)
        if res.returncode != 0:
            raise BackupFailed(f"pg_dump failed (exit {res.returncode}): {_tail(res.stderr)}")
        _fsync(partial)
        os.replace(partial, final)
        _fsync(directory, directory=True)
    finally:
        partial.unlink(missing_ok=True)
    seconds = time.monotonic() - t0
    expected, others = split_warnings(res.stderr, catalog)
    if others:
        log.warning("backup_pg_dump_said", extra={"lines": others[:20]})
    pruned = tuple(prune(directory, dbname, keep))
    done = Backup(final, final.stat().st_size, seconds, dbname, tsdb, pruned)
    log.info("backup_done", extra={
        "file": str(final), "bytes": done.bytes, "seconds": round(seconds, 3), "database": dbname,
        "server_major": major, "timescaledb": tsdb, "pg_dump": pg_dump.path,
        "expected_timescaledb_warnings": expected, "kept": keep, "pruned": [p.name for p in pruned]})
    return done


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(ln.strip() for ln in text.strip().splitlines()[-lines:]) or "(no output)"


_TOC_EXT_RE = re.compile(r"^\d+; \d+ \d+ (?:EXTENSION - (?P<ext>\S+)|COMMENT - EXTENSION (?P<cext>\S+))")


def _toc(pg_restore: pgtools.Program, file: Path) -> list[str]:
    res = subprocess.run([pg_restore.path, "--list", str(file)], capture_output=True, text=True)
    if res.returncode != 0:
        raise BackupFailed(f"{file} is not a pg_dump custom-format archive pg_restore can read: {_tail(res.stderr)}")
    return res.stdout.splitlines()


def _ensure_timescaledb(conn: psycopg.Connection) -> None:
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return
    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
        raise BackupFailed("the backup is of a TimescaleDB database and this server has no TimescaleDB: install "
                           "the same TimescaleDB version as the backed-up server (the backup's log line names it)")
    if "timescaledb" not in str(db.one(conn.execute("SELECT current_setting('shared_preload_libraries')"))[0]):
        raise BackupFailed("TimescaleDB is installed but not loaded: add timescaledb to shared_preload_libraries, "
                           "restart PostgreSQL, then restore again")
    try:
        conn.execute("CREATE EXTENSION timescaledb")
    except psycopg.errors.InsufficientPrivilege as err:
        raise BackupFailed(f"this role may not create the TimescaleDB extension ({str(err).strip()}): as a "
                           f"superuser run CREATE EXTENSION timescaledb; in {conn.info.dbname}, then restore "
                           "again") from None


def restore(dsn: str, file: Path, *, bindir: Path | None = None) -> dict:
    """Restore ``file`` into the empty database ``dsn`` names; raises BackupFailed (refusals included)."""
    if not file.is_file():
        raise BackupFailed(f"{file}: no such file")
    with db.connect(dsn, autocommit=True) as conn:
        dbname, major, have_tsdb = _server(conn)
        pg_restore = pgtools.program("pg_restore", major, bindir)
        toc = _toc(pg_restore, file)
        found = pgtools.user_objects(conn)
        if found:
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            raise BackupFailed(f"database {dbname} is not empty ({shown}): nothing was changed. Restore into a new, "
                               f"empty database (e.g. createdb -O <owner> {dbname}_restored) and point "
                               "DATABASE_URL at it")
        dumped = {m.group("ext") or m.group("cext") for ln in toc if (m := _TOC_EXT_RE.match(ln))}
        tsdb = "timescaledb" in dumped
        superuser = bool(db.one(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))[0])
        if tsdb and not superuser:
            raise BackupFailed(f"the backup is of a TimescaleDB database: restoring it takes a superuser "
                               f"(timescaledb_pre_restore() and TimescaleDB's catalog); nothing was changed. As the "
                               f"superuser: sudo -u postgres env DATABASE_URL=postgresql:///{dbname} collector db "
                               f"restore FILE (the dump's owners are kept then)")
        if tsdb:
            _ensure_timescaledb(conn)
        present = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        # the extensions already there are not created (or commented on: that needs their owner) again
        keep = [ln for ln in toc
                if not ((m := _TOC_EXT_RE.match(ln)) and (m.group("ext") or m.group("cext")) in present)]
        target, env = pgtools.child_connection(dsn)
        t0 = time.monotonic()
        if tsdb:
            conn.execute("SELECT timescaledb_pre_restore()")
        try:
            with tempfile.NamedTemporaryFile("w", suffix=".list", prefix="collector-restore-") as listing:
                listing.write("\n".join(keep) + "\n")
                listing.flush()
                # a superuser restores the dump's owners; another role becomes the owner of everything
                res = subprocess.run([pg_restore.path, "--single-transaction", "--no-password",
                                      *([] if superuser else ["--no-owner"]),
                                      "--use-list", listing.name, "--dbname", target, str(file)],
                                     env=env, capture_output=True, text=True)
        finally:
            if tsdb:
                conn.execute("SELECT timescaledb_post_restore()")
        if res.returncode != 0:
            raise BackupFailed(f"pg_restore failed (exit {res.returncode}); the database was left empty: "
                               f"{_tail(res.stderr)}")
        restore_s = time.monotonic() - t0
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'collector_compat'").fetchone():
            conn.execute(sql.SQL('ALTER DATABASE {} SET search_path = "$user", public, collector_compat')
                         .format(sql.Identifier(dbname)))
        t1 = time.monotonic()
        conn.execute("ANALYZE")
        analyze_s = time.monotonic() - t1
        relations = len(pgtools.user_objects(conn))
    out = {"file": str(file), "bytes": file.stat().st_size, "database": dbname, "timescaledb": tsdb,
           "seconds": round(restore_s, 3), "analyze_seconds": round(analyze_s, 3), "objects": relations,
           "had_timescaledb": have_tsdb is not None}
    log.info("restore_done", extra=out)
    return out


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def run_backup(settings: Settings) -> int:
    dsn = settings.backup_database_url or settings.require_database_url()
    try:
        done = make_backup(dsn, settings.backup_dir, settings.backup_keep, bindir=settings.pg_bindir)
    except (BackupFailed, pgtools.ToolMissing, OSError) as err:
        log.error("backup_failed", extra={"error": str(err), "dir": str(settings.backup_dir)})
        print(f"collector: backup failed: {err}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as err:
        log.error("backup_failed", extra={"error": str(err).strip(), "dir": str(settings.backup_dir)})
        print(f"collector: cannot reach the database: {str(err).strip()}", file=sys.stderr)
        return 1
    print(f"{done.path} ({_size(done.bytes)} in {done.seconds:.1f} s"
          + (f", {len(done.pruned)} older deleted" if done.pruned else "") + ")")
    return 0


def run_restore(settings: Settings, file: Path) -> int:
    dsn = settings.require_database_url()
    try:
        out = restore(dsn, file, bindir=settings.pg_bindir)
    except (BackupFailed, pgtools.ToolMissing, OSError) as err:
        print(f"collector: restore refused or failed: {err}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as err:
        print(f"collector: cannot reach the database: {str(err).strip()}", file=sys.stderr)
        return 1
    print(f"restored {file} into {out['database']} ({_size(out['bytes'])} in {out['seconds']:.1f} s, "
          f"ANALYZE {out['analyze_seconds']:.1f} s" + (", TimescaleDB pre/post-restore" if out["timescaledb"] else "")
          + ")")
    return 0
