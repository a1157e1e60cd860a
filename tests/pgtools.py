"""Helpers for tests that need PostgreSQL databases (see conftest.py for the fixtures)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PG_CTL = str(ROOT / "tests" / "support" / "pg_ctl")

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


def migrated_database(proc, currencies=("BTC", "ETH")) -> str:
    """A fresh database on ``proc`` with every migration applied; returns its DSN."""
    from collector.store import migrate

    dsn = dsn_of(proc, create_database(proc))
    with psycopg.connect(dsn) as conn:
        migrate.migrate(conn, list(currencies))
    return dsn
