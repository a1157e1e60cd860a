"""Shared fixtures: a real PostgreSQL server (pytest-postgresql) and fresh databases from it.

* ``pg``: the session's server (started once, ~1 s). As root, pg_ctl runs as the ``postgres`` user via
  ``tests/support/pg_ctl`` (initdb refuses root).
* ``dsn``: a fresh database with every migration applied, cloned from a template in milliseconds.
* ``empty_dsn``: a fresh, empty database (for the migration tests).
Tests that stop and start a server for real get one of their own (tests/store/test_outage.py).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql import factories

from collector.store import migrate

from tests.pgtools import PG_CTL, _admin, create_database, drop_database, dsn_of

pg = factories.postgresql_proc(executable=PG_CTL, host="127.0.0.1", port=None)


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
