"""Shared fixtures: a real PostgreSQL server (pytest-postgresql) and fresh databases from it.

* ``pg``: the session's server (started once, ~1 s). As root, pg_ctl runs as the ``postgres`` user via
  ``tests/support/pg_ctl`` (initdb refuses root).
* ``dsn``: a fresh database with every migration applied, cloned from a template in milliseconds.
* ``empty_dsn``: a fresh, empty database (for the migration tests).
* ``make_server``: a separate server of the test's own, for tests that stop and start it for real.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql import factories

from collector.store import migrate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PG_CTL = str(ROOT / "tests" / "support" / "pg_ctl")

pg = factories.postgresql_proc(executable=PG_CTL, host="127.0.0.1", port=None)
_db_names = itertools.count(1)


def dsn_of(proc, dbname: str) -> str:
    return f"postgresql://{proc.user}@{proc.host}:{proc.port}/{dbname}"


def _admin(proc) -> psycopg.Connection:
    return psycopg.connect(dsn_of(proc, "postgres"), autocommit=True)


def create_database(proc, template: str = "template0") -> str:
    name = f"t{os.getpid()}_{next(_db_names)}"
    with _admin(proc) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return name


def drop_database(proc, name: str) -> None:
    with _admin(proc) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def migrated_template(pg) -> str:
    name = create_database(pg)
    with psycopg.connect(dsn_of(pg, name)) as conn:
        migrate.migrate(conn, ["BTC", "ETH"])
    with _admin(pg) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH is_template true").format(sql.Identifier(name)))
    return name


@pytest.fixture
def dsn(pg, migrated_template):
    name = create_database(pg, template=migrated_template)
    yield dsn_of(pg, name)
    drop_database(pg, name)


@pytest.fixture
def empty_dsn(pg):
    name = create_database(pg)
    yield dsn_of(pg, name)
    drop_database(pg, name)


@pytest.fixture
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c
