"""The migration runner: numbered plain-SQL files applied in order, once each.

* Files are ``sql/NNNN_name.sql`` (shipped in the package as ``collector.sql``); each is applied in its
  own transaction and recorded in ``schema_migrations`` with its SHA-256.
* The whole run holds a PostgreSQL advisory lock, so two deploys never migrate at once.
* An applied file whose checksum changed stops the run (migrations are append-only once landed).
* After the files, the idempotent hooks run: TimescaleDB setup (a no-op without it) and the
  per-currency views for every configured currency.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

LOCK_KEY = 0x636F6C6C  # "coll": the advisory lock id of the migration runner
_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
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


def migrate(conn: psycopg.Connection, currencies: Iterable[str] = (), *,
            migrations: list[Migration] | None = None, dry_run: bool = False) -> list[str]:
    """Apply what is missing; return the names applied (or that would be, with ``dry_run``).

    ``conn`` must be a fresh connection not in a transaction; it is left in autocommit mode.
    """
    migrations = load_migrations() if migrations is None else migrations
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        conn.execute(_CREATE_TABLE)
        applied = {v: (n, c) for v, n, c in conn.execute("SELECT version, name, checksum FROM schema_migrations")}
        for mg in migrations:
            if mg.version in applied and applied[mg.version][1] != mg.checksum:
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
        if _has_function(conn, "collector_timescaledb_setup"):
            engine = conn.execute("SELECT collector_timescaledb_setup()").fetchone()[0]
            log.info("timescaledb_setup", extra={"engine": engine})
        for cur in currencies:
            # the currency was validated (letters/digits) by config; the SQL function checks again
            conn.execute(sql.SQL("SELECT collector_ensure_currency({})").format(sql.Literal(cur)))
        return [mg.name for mg in todo]
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _has_function(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = %s)", (name,)).fetchone()[0]
