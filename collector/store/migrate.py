"""The migration runner: numbered plain-SQL files applied in order, once each.

* Files are ``sql/NNNN_name.sql`` (shipped in the package as ``collector.sql``); each is applied in its
  own transaction and recorded in ``schema_migrations`` with its SHA-256.
* The whole run holds a PostgreSQL advisory lock, so two deploys never migrate at once.
* An applied file whose checksum changed stops the run (migrations are append-only once landed).
* A database that holds relations of ours by name but was never migrated by us (another collector's
  database, e.g. the user's current one) is refused before anything is changed.
* After the files, the idempotent hooks run: TimescaleDB setup (plain tables with a warning when it is
  installed but not preloaded) and the per-currency tables for every configured currency; a continuous
  aggregate created by this run is refreshed over all the data already stored.
* Warnings of the SQL (``RAISE WARNING``) reach ``on_warning`` (default: the log), hint included.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

import psycopg
from psycopg import sql

from collector.errors import CollectorError
from collector.store import db, status

log = logging.getLogger(__name__)

LOCK_KEY = 0x636F6C6C  # "coll": the advisory lock id of the migration runner
_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


# Files corrected in place after they landed (the one exception to append-only), with the checksums
# they were applied under: a database that applied the old text is as good as one that applied the new.
SUPERSEDED: dict[str, set[str]] = {
    # 0003 used to end by running its set-up, whose CREATE EXTENSION ends the connection with a FATAL
    # on a server that has TimescaleDB installed but not preloaded; 0004 does that set-up safely.
    "0003_timescaledb.sql": {"3d2a75582f393e7fa150a7b699c9d450e6b52193654913e791db0a0c618e89ea"},
}


class MigrationError(CollectorError, RuntimeError):
    """A migration cannot be applied safely (changed file, bad name, SQL error)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """The migration files in version order. Default: the ones shipped with the package."""
    if directory is None:
        try:  # an installed wheel carries sql/ as the package collector.sql
            root = resources.files("collector.sql")
        except ModuleNotFoundError:  # a source checkout (editable install): the top-level sql/
            root = Path(__file__).resolve().parents[2] / "sql"
    else:
        root = Path(directory)
    files = [(p.name, p.read_text()) for p in root.iterdir() if p.name.endswith(".sql")]
    out: list[Migration] = []
    for name, text in files:
        m = _NAME_RE.match(name)
        if not m:
            raise MigrationError(f"bad migration file name {name!r}: expected NNNN_lower_case.sql")
        out.append(Migration(int(m.group(1)), name, text))
    out.sort(key=lambda mg: mg.version)
    versions = [mg.version for mg in out]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number: {versions}")
    return out


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def _log_warning(message: str) -> None:
    log.warning("migration_warning", extra={"warning": message})


def migrate(conn: psycopg.Connection, currencies: Iterable[str] = (), *,
            migrations: list[Migration] | None = None, dry_run: bool = False, hooks: bool = True,
            on_warning: Callable[[str], None] = _log_warning) -> list[str]:
    """Apply what is missing; return the names applied (or that would be, with ``dry_run``).

    ``conn`` must be a fresh connection not in a transaction; it is left in autocommit mode.
    ``hooks=False`` applies the files only (the tests use it to build an earlier layout).
    """
    migrations = load_migrations() if migrations is None else migrations
    conn.autocommit = True

    def notice(diag: psycopg.errors.Diagnostic) -> None:
        if diag.severity_nonlocalized == "WARNING":
            assert diag.message_primary is not None  # every notice has one
            on_warning(diag.message_primary + (f" (hint: {diag.message_hint})" if diag.message_hint else ""))

    conn.add_notice_handler(notice)
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        _refuse_foreign_layout(conn, currencies)
        conn.execute(_CREATE_TABLE)
        applied = {v: (n, c) for v, n, c in conn.execute("SELECT version, name, checksum FROM schema_migrations")}
        for mg in migrations:
            if mg.version in applied and applied[mg.version][1] != mg.checksum \
                    and applied[mg.version][1] not in SUPERSEDED.get(mg.name, ()):
                raise MigrationError(
                    f"migration {mg.name} was applied with checksum {applied[mg.version][1][:12]}… but the file "
                    f"now has {mg.checksum[:12]}…: applied migrations are append-only; add a new file instead")
        todo = [mg for mg in migrations if mg.version not in applied]
        if dry_run:
            return [mg.name for mg in todo]
        for mg in todo:
            try:
                with conn.transaction():
                    conn.execute(mg.text.encode())  # bytes: no client-side % placeholder parsing
                    conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                 (mg.version, mg.name, mg.checksum))
            except psycopg.Error as err:
                raise MigrationError(f"migration {mg.name} failed: {str(err).strip()}") from err
            log.info("migration_applied", extra={"migration": mg.name, "checksum": mg.checksum[:12]})
        if hooks:
            _run_hooks(conn, currencies)
        return [mg.name for mg in todo]
    finally:
        conn.remove_notice_handler(notice)
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _run_hooks(conn: psycopg.Connection, currencies: Iterable[str]) -> None:
    caggs_before = _caggs(conn)
    try:
        if _has_function(conn, "collector_timescaledb_setup"):
            engine = db.one(conn.execute("SELECT collector_timescaledb_setup()"))[0]
            log.info("timescaledb_setup", extra={"engine": engine})
        for cur in currencies:
            # the currency was validated (letters/digits) by config; the SQL function checks again
            conn.execute(sql.SQL("SELECT collector_ensure_currency({})").format(sql.Literal(cur)))
        for name in sorted(_caggs(conn) - caggs_before):
            # a new aggregate starts empty: fill it from the rows already stored (once; the policy
            # keeps it up to date from then on). CALL cannot run in a transaction: autocommit here.
            conn.execute(sql.SQL("CALL refresh_continuous_aggregate({}, NULL, now() - INTERVAL '1 hour')")
                         .format(sql.Literal(name)))
    except psycopg.Error as err:
        raise MigrationError(f"{str(err).strip()}" + (f" (hint: {err.diag.message_hint})"
                                                      if err.diag.message_hint else "")) from err


def _caggs(conn: psycopg.Connection) -> set[str]:
    if not db.one(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"))[0]:
        return set()
    return {r[0] for r in conn.execute(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = current_schema()")}


def _refuse_foreign_layout(conn: psycopg.Connection, currencies: Iterable[str]) -> None:
    """A database never migrated by us that already has relations with our names: refuse, change nothing."""
    if db.one(conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL"))[0]:
        return
    # the relations of ours a foreign database may already have under the same names
    names = status.relations_for(sorted({*currencies, "BTC", "ETH"})) + ["data_gaps", "collector_status"]
    found = [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relname = ANY(%s) ORDER BY 1", (names,))]
    if found:
        raise MigrationError(
            f"this database already holds {', '.join(found)} but was never migrated by the collector "
            "(no schema_migrations table): it is another layout (e.g. the database of the collector you run "
            "today). Nothing was changed. Point DATABASE_URL at a new, empty database; the old data is "
            "copied over by an import, never migrated in place")


def _has_function(conn: psycopg.Connection, name: str) -> bool:
    return db.one(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = %s)", (name,)))[0]
