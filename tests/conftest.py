"""Shared fixtures: a real PostgreSQL server (pytest-postgresql) and fresh databases from it.

* ``engine``: every test that uses a database runs twice, on plain PostgreSQL and on TimescaleDB
  (``tests/support/pg_ctl_timescaledb``: a PostgreSQL carrying the TimescaleDB built by
  ``bin/timescaledb`` from ``tests/vendor``; skipped with the reason where it cannot be had, a failure
  under ``CI=true``).
* ``pg``: the session's server of that engine (started once, ~1 s). As root, pg_ctl runs as the
  ``postgres`` user via ``tests/support/pg_ctl`` (initdb refuses root).
* ``dsn``: a fresh database with every migration applied, cloned from a template in milliseconds.
* ``empty_dsn``: a fresh, empty database (for the migration tests).
Tests that stop and start a server for real get one of their own (tests/store/test_outage.py).
"""

from __future__ import annotations

import psycopg
import pytest

from collector.store import migrate

from tests.pgtools import ENGINES, create_database, drop_database, dsn_of, engine_server, make_template, server_pair

pg_plain, pg_tsdb = server_pair()
pg = engine_server("pg_plain", "pg_tsdb")


@pytest.fixture(scope="session", params=ENGINES)
def engine(request) -> str:
    return request.param


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.engines("postgres")``: the test's other engine variants are deselected (said in the summary)."""
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("engines")
        engine = getattr(getattr(item, "callspec", None), "params", {}).get("engine")
        (drop if mark is not None and engine is not None and engine not in mark.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def migrated_template(pg) -> str:
    name = create_database(pg)
    with psycopg.connect(dsn_of(pg, name)) as conn:
        migrate.migrate(conn, ["BTC", "ETH"])
    make_template(pg, name)
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
