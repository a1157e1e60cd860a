"""A database in the Docker collector's layout (legacy_schema.sql, filled by legacy_rows.sql) on the
session's server, next to ours (the ``dsn`` fixture). On the TimescaleDB engine its tick tables are
hypertables (1-day chunks, compressed, segmented by instrument, as theirs) with every chunk compressed."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.pgtools import create_database, drop_database, dsn_of

HERE = Path(__file__).parent
HYPERTABLES = ("eth_option_quotes", "eth_option_trades", "perpetuals_quotes")


def make_legacy(dsn: str, timescaledb: bool, rows: bool = True) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((HERE / "legacy_schema.sql").read_text().encode())
        if timescaledb:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for table in HYPERTABLES:
                conn.execute("SELECT create_hypertable(%s::regclass, 'timestamp', chunk_time_interval => INTERVAL '1 day')",
                             (table,))
                conn.execute(f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument')")
        if rows:
            conn.execute((HERE / "legacy_rows.sql").read_text().encode())
        if timescaledb:
            for table in HYPERTABLES:
                conn.execute("SELECT compress_chunk(c) FROM show_chunks(%s::regclass) c", (table,))
        conn.execute("ANALYZE")


def compressed_chunks(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE is_compressed").fetchone()[0]


@pytest.fixture
def legacy_dsn(pg, engine):
    name = create_database(pg)
    dsn = dsn_of(pg, name)
    make_legacy(dsn, engine == "timescaledb")
    yield dsn
    drop_database(pg, name)


@pytest.fixture
def second_dsn(pg, migrated_template):
    """Another database of ours (a reference import)."""
    name = create_database(pg, template=migrated_template)
    yield dsn_of(pg, name)
    drop_database(pg, name)
