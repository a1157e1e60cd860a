"""Helpers for tests that need PostgreSQL databases (see conftest.py for the fixtures)."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql import factories

ROOT = Path(__file__).resolve().parents[1]
PG_CTL = str(ROOT / "tests" / "support" / "pg_ctl")
PG_CTL_TSDB = str(ROOT / "tests" / "support" / "pg_ctl_timescaledb")
TSDB_OPTIONS = "-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
ENGINES = ("postgres", "timescaledb")


def timescaledb_bindir() -> str:
    """The bin/ of a PostgreSQL carrying TimescaleDB (built from tests/vendor once, cached), or a skip
    with the reason -- a failure under CI=true, where these tests must run."""
    env_dir = os.environ.get("COLLECTOR_TSDB_BINDIR")
    if env_dir:
        return env_dir
    tool = str(ROOT / "bin" / "timescaledb")
    check = subprocess.run([tool, "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        reason = f"TimescaleDB tests skipped: {(check.stdout + check.stderr).strip() or 'not available'}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} -- under CI=true they must run", pytrace=False)
        pytest.skip(reason)
    got = subprocess.run([tool], stdout=subprocess.PIPE, text=True)  # builds once (progress on stderr)
    if got.returncode != 0 or not got.stdout.strip():
        pytest.fail("bin/timescaledb failed (see its output above)", pytrace=False)
    os.environ["COLLECTOR_TSDB_BINDIR"] = got.stdout.strip()
    return os.environ["COLLECTOR_TSDB_BINDIR"]


def server_pair(**kw):
    """A plain PostgreSQL server factory and a TimescaleDB one (preloaded), for a module's own servers."""
    return (factories.postgresql_proc(executable=PG_CTL, host="127.0.0.1", port=None, **kw),
            factories.postgresql_proc(executable=PG_CTL_TSDB, host="127.0.0.1", port=None,
                                      postgres_options=TSDB_OPTIONS, **kw))


def engine_server(plain: str, tsdb: str):
    """A fixture that is the ``plain`` or the ``tsdb`` server fixture, following the ``engine`` param."""

    @pytest.fixture(scope="session")
    def server(request, engine):
        if engine == "timescaledb":
            timescaledb_bindir()
            return request.getfixturevalue(tsdb)
        return request.getfixturevalue(plain)

    return server


_db_names = itertools.count(1)


def dsn_of(proc, dbname: str) -> str:
    return f"postgresql://{proc.user}@{proc.host}:{proc.port}/{dbname}"


def _admin(proc) -> psycopg.Connection:
    return psycopg.connect(dsn_of(proc, "postgres"), autocommit=True)


def create_database(proc, template: str = "template0") -> str:
    name = f"t{os.getpid()}_{next(_db_names)}"
    with _admin(proc) as conn:
        for attempt in range(50):
            try:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
                break
            except psycopg.errors.ObjectInUse:
                # TimescaleDB's job scheduler may still be connected to the template: end it, retry
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (template,))
                if attempt == 49:
                    raise
        # what ALTER DATABASE ... SET gave the template (0002's search_path, for time_bucket/first/last on
        # plain PostgreSQL) is the database's, not copied by CREATE DATABASE: set it again, as a real one has it
        for (setting,) in conn.execute(
                "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
                "WHERE d.datname = %s AND s.setrole = 0", (template,)):
            key, _, value = setting.partition("=")
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(name), sql.Identifier(key), sql.SQL(value)))
    return name


def make_template(proc, name: str) -> None:
    """Freeze a database as a template nobody connects to (TimescaleDB's scheduler skips it then)."""
    with _admin(proc) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("ALTER DATABASE {} WITH is_template true ALLOW_CONNECTIONS false").format(ident))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def drop_database(proc, name: str) -> None:
    with _admin(proc) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def is_timescaledb(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").fetchone()[0]


def migrated_database(proc, currencies=("BTC", "ETH")) -> str:
    """A fresh database on ``proc`` with every migration applied; returns its DSN."""
    from collector.store import migrate

    dsn = dsn_of(proc, create_database(proc))
    with psycopg.connect(dsn) as conn:
        migrate.migrate(conn, list(currencies))
    return dsn
