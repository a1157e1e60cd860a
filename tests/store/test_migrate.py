"""Migrations on an empty database (both engines): every relation, idempotence, checksums, the user's
own statements from their plan, run verbatim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from collector.store import migrate, status

USER_RELATIONS = [
    "index_prices", "perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv", "options_greeks", "funding_rates",
    "perpetuals_orderbook_depth", "eth_option_quotes", "btc_option_quotes", "eth_option_trades",
    "btc_option_trades", "eth_option_orderbook_depth", "btc_option_orderbook_depth", "data_gaps",
    "collector_status", "eth_option_quotes_1h", "btc_option_quotes_1h", "perpetuals_quotes", "perpetuals_trades",
]

# The plan's Step 2: "Verify schemas exist" -- every table it expects must be a table (pg_tables)
PLAN_STEP2_QUERY = """
SELECT schemaname, tablename
FROM pg_tables
WHERE schemaname = 'public'
ORDER BY tablename;
"""
PLAN_STEP2_TABLES = {
    "eth_option_quotes", "eth_option_trades", "eth_option_orderbook_depth", "btc_option_quotes",
    "btc_option_trades", "btc_option_orderbook_depth", "perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv",
    "options_greeks", "funding_rates", "index_prices", "data_gaps", "collector_status",
}

# The plan's "Check All Tables Have Data", verbatim
PLAN_FRESHNESS_QUERY = """
-- Run this after 10 minutes of collection
SELECT
  'eth_option_quotes' as table_name,
  COUNT(*) as rows,
  MAX(timestamp) as latest,
  NOW() - MAX(timestamp) as age
FROM eth_option_quotes
UNION ALL
SELECT 'btc_option_quotes', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp)
FROM btc_option_quotes
UNION ALL
SELECT 'perpetuals_ohlcv', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp)
FROM perpetuals_ohlcv
UNION ALL
SELECT 'futures_ohlcv', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp)
FROM futures_ohlcv
UNION ALL
SELECT 'options_ohlcv', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp)
FROM options_ohlcv
UNION ALL
SELECT 'options_greeks', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp)
FROM options_greeks
UNION ALL
SELECT 'funding_rates', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp)
FROM funding_rates
ORDER BY age DESC;
"""

# The plan's "Check Data Quality", verbatim
PLAN_QUALITY_QUERY = """
-- Check for instruments per currency
SELECT
  SUBSTRING(instrument FROM 1 FOR 3) as currency,
  COUNT(DISTINCT instrument) as num_instruments,
  MIN(timestamp) as first_data,
  MAX(timestamp) as latest_data
FROM eth_option_quotes
GROUP BY currency;
"""

USER_CHECK_QUERY = """
SELECT 'eth_option_quotes', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp) FROM eth_option_quotes
UNION ALL SELECT 'btc_option_quotes', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp) FROM btc_option_quotes
UNION ALL SELECT 'perpetuals_ohlcv', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp) FROM perpetuals_ohlcv
UNION ALL SELECT 'futures_ohlcv', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp) FROM futures_ohlcv
UNION ALL SELECT 'options_ohlcv', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp) FROM options_ohlcv
UNION ALL SELECT 'options_greeks', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp) FROM options_greeks
UNION ALL SELECT 'funding_rates', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp) FROM funding_rates
UNION ALL SELECT 'index_prices', COUNT(*), MAX(timestamp), NOW() - MAX(timestamp) FROM index_prices
"""

USER_ROLLUP_QUERY = """
SELECT time_bucket('1 hour', timestamp) AS hour, instrument, FIRST(best_bid_price, timestamp) AS open,
MAX(best_bid_price) AS high, MIN(best_bid_price) AS low, LAST(best_bid_price, timestamp) AS close
FROM eth_option_quotes GROUP BY hour, instrument ORDER BY hour, instrument
"""


def _migrate(dsn, currencies=("BTC", "ETH"), **kw):
    with psycopg.connect(dsn) as conn:
        return migrate.migrate(conn, currencies, **kw)


def test_fresh_database_gets_every_relation_and_second_run_is_noop(empty_dsn):
    applied = _migrate(empty_dsn)
    assert applied == [m.name for m in migrate.load_migrations()]
    assert len(applied) >= 3
    with psycopg.connect(empty_dsn) as conn:
        for rel in USER_RELATIONS:
            assert conn.execute("SELECT to_regclass(%s)", (rel,)).fetchone()[0] is not None, rel
            cols = {r[0] for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0", (rel,))}
            if not rel.endswith("_1h"):
                assert {"timestamp"} <= cols and ({"instrument"} <= cols or rel == "index_prices"), rel
        recorded = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert recorded == len(applied)
    assert _migrate(empty_dsn) == []  # a second run applies nothing
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == recorded


def test_user_queries_run_as_written(empty_dsn):
    _migrate(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:  # a new session sees the search_path
        rows = conn.execute(USER_CHECK_QUERY).fetchall()
        assert [r[0] for r in rows][:2] == ["eth_option_quotes", "btc_option_quotes"]
        assert all(r[1] == 0 for r in rows)
        conn.execute("""
            INSERT INTO eth_option_quotes (timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount)
            VALUES ('2026-11-25 10:05Z', 'ETH-27DEC26-3000-C', 0.10, 5, 0.11, 5),
                   ('2026-11-25 10:20Z', 'ETH-27DEC26-3000-C', 0.14, 5, 0.15, 5),
                   ('2026-11-25 10:40Z', 'ETH-27DEC26-3000-C', 0.08, 5, 0.09, 5),
                   ('2026-11-25 10:55Z', 'ETH-27DEC26-3000-C', 0.12, 5, 0.13, 5),
                   ('2026-11-25 11:01Z', 'ETH-27DEC26-3000-C', NULL, 0, 0.13, 5)""")
        conn.execute("INSERT INTO btc_option_quotes (timestamp, instrument, best_bid_price, best_bid_amount, "
                     "best_ask_price, best_ask_amount) VALUES ('2026-11-25 10:30Z', 'BTC-27DEC26-90000-C', 0.5, 1, 0.6, 1)")
        rollup = conn.execute(USER_ROLLUP_QUERY).fetchall()
        assert len(rollup) == 2
        hour, inst, o, h, lo, c = rollup[0]
        assert hour.isoformat() == "2026-11-25T10:00:00+00:00" and inst == "ETH-27DEC26-3000-C"
        assert (o, h, lo, c) == (0.10, 0.14, 0.08, 0.12)
        assert rollup[1][2] is None  # first() of a NULL bid is NULL, like TimescaleDB
        assert conn.execute("SELECT count(*) FROM btc_option_quotes").fetchone()[0] == 1
        hourly = conn.execute("SELECT bid_open, bid_high, bid_low, bid_close, quotes FROM eth_option_quotes_1h "
                              "ORDER BY hour LIMIT 1").fetchone()
        assert hourly == (0.10, 0.14, 0.08, 0.12, 4)
        counts = {r[0]: r[1] for r in conn.execute(USER_CHECK_QUERY)}
        assert counts["eth_option_quotes"] == 5 and counts["btc_option_quotes"] == 1
        fresh = conn.execute(PLAN_FRESHNESS_QUERY).fetchall()
        assert {r[0]: r[1] for r in fresh} == {"eth_option_quotes": 5, "btc_option_quotes": 1, "perpetuals_ohlcv": 0,
                                               "futures_ohlcv": 0, "options_ohlcv": 0, "options_greeks": 0,
                                               "funding_rates": 0}
        quality = conn.execute(PLAN_QUALITY_QUERY).fetchall()
        assert [(cur, n) for cur, n, _first, _last in quality] == [("ETH", 1)]
        assert quality[0][2].isoformat() == "2026-11-25T10:05:00+00:00"


def test_the_plans_step2_lists_every_table_it_expects(empty_dsn):
    _migrate(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        tables = {name for schema, name in conn.execute(PLAN_STEP2_QUERY)}
    assert PLAN_STEP2_TABLES <= tables, PLAN_STEP2_TABLES - tables
    # and the perpetual tick tables the user's collector has besides (its script 004)
    assert {"perpetuals_quotes", "perpetuals_trades", "perpetuals_orderbook_depth"} <= tables


def test_new_currency_needs_no_ddl(empty_dsn):
    _migrate(empty_dsn, currencies=("BTC", "ETH", "SOL"))
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO sol_option_trades (timestamp, instrument, trade_seq, trade_id, price, amount, direction) "
                     "VALUES (now(), 'SOL-27DEC26-200-C', 1, 'SOL-1', 0.01, 10, 'buy')")
        assert conn.execute("SELECT count(*) FROM sol_option_trades").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM eth_option_trades").fetchone()[0] == 0
        kinds = dict(conn.execute("SELECT relname, relkind FROM pg_class WHERE relname LIKE 'sol\\_%' "
                                  "AND relkind IN ('r', 'v')").fetchall())
        assert {k: v for k, v in kinds.items() if k != "sol_option_quotes_1h"} == {
            "sol_option_quotes": "r", "sol_option_trades": "r", "sol_option_orderbook_depth": "r"}
        assert "sol_option_quotes_1h" in kinds
        assert conn.execute("SELECT currency FROM collector_currencies ORDER BY 1").fetchall() == [
            ("BTC",), ("ETH",), ("SOL",)]
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("SELECT collector_ensure_currency('x; drop table eth_option_trades')")


def test_changed_applied_migration_is_refused(empty_dsn, tmp_path):
    files = migrate.load_migrations()
    _migrate(empty_dsn, migrations=files)
    tampered = [migrate.Migration(m.version, m.name, m.text + "\n-- edited") if m.version == 1 else m for m in files]
    with pytest.raises(migrate.MigrationError, match="append-only"):
        _migrate(empty_dsn, migrations=tampered)


def test_failed_migration_rolls_back_and_is_not_recorded(empty_dsn):
    files = migrate.load_migrations() + [migrate.Migration(9999, "9999_broken.sql", "CREATE TABLE x (a int); SELECT nope;")]
    with pytest.raises(migrate.MigrationError, match="9999_broken.sql"):
        _migrate(empty_dsn, migrations=files)
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT to_regclass('x')").fetchone()[0] is None
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] < 9999


def test_bad_file_names_are_refused(tmp_path):
    (tmp_path / "1_x.sql").write_text("SELECT 1")
    with pytest.raises(migrate.MigrationError, match="bad migration file name"):
        migrate.load_migrations(tmp_path)


def test_cli_migrate_twice_then_status(empty_dsn):
    def run(*a):
        return subprocess.run([sys.executable, "-m", "collector.cli", "--database-url", empty_dsn, *a],
                              capture_output=True, text=True, timeout=60)
    first = run("db", "migrate")
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    second = run("db", "migrate")
    assert second.returncode == 0 and "up to date" in second.stdout
    st = run("db", "status")
    assert st.returncode == 1, st.stderr     # empty relations: stale by the default limits (COLLECTOR_MAX_AGE)
    for rel in status.relations_for(["BTC", "ETH"]):
        assert rel in st.stdout
    stale = run("db", "status", "--max-age", "5m")
    assert stale.returncode == 1 and "STALE" in stale.stdout
    js = run("db", "status", "--json", "--max-age", "5m", "--max-age", "index_prices=1h")
    assert js.returncode == 1
    import json
    doc = json.loads(js.stdout)
    assert {r["relation"]: r["max_age_s"] for r in doc["relations"]}["index_prices"] == 3600
    bad = run("db", "status", "--max-age", "nope_relation=5m")
    assert bad.returncode == 2 and "--max-age" in bad.stderr


def test_status_reports_rows_and_freshness(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO index_prices VALUES (now() - interval '30 seconds', 'btc_usd', 90000, NULL)")
        st = status.relation_status(conn, "index_prices")
        assert st.rows == 1 and st.rows_exact and 25 < st.age.total_seconds() < 3600
        assert status.relation_status(conn, "eth_option_quotes").rows == 0
        assert status.relation_status(conn, "nope").rows is None


# -- from an earlier layout, and a database of another layout ------------------------------------

LAYOUT_0003 = Path(__file__).resolve().parents[1] / "data" / "layout_0003"  # sql/ as landed before 0004
OLD_QUOTE_COLS = ("timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount, mark_price, "
                  "mark_iv, bid_iv, ask_iv, underlying_price, underlying_index, index_price, open_interest")
OLD_TRADE_COLS = ("timestamp, instrument, trade_seq, trade_id, price, amount, direction, contracts, tick_direction, "
                  "index_price, mark_price, iv, liquidation, block_trade_id, combo_id")
OLD_DEPTH_COLS = ("timestamp, instrument, change_id, depth, bid_prices, bid_amounts, ask_prices, ask_amounts, "
                  "best_bid_price, best_ask_price, mark_price, index_price")


def _fill_old_layout(conn) -> None:
    t0 = "now() - interval '10 days'"
    for cur, n in (("BTC", 3000), ("ETH", 2000), ("SOL", 50)):
        conn.execute(f"""
            INSERT INTO option_quotes ({OLD_QUOTE_COLS}, currency)
            SELECT {t0} + i * interval '7 seconds', '{cur}-27DEC26-' || (i % 7) || '-C', 0.01 * (i % 13), i % 5,
                   CASE WHEN i % 9 = 0 THEN NULL ELSE 0.02 END, 1, 0.015, 55.5 + i % 3, NULL, 60, 90000 + i,
                   '{cur}-27DEC26', 90001, i * 10, '{cur}'
            FROM generate_series(1, {n}) i""")
        conn.execute(f"""
            INSERT INTO option_trades ({OLD_TRADE_COLS}, currency)
            SELECT {t0} + i * interval '11 seconds', '{cur}-27DEC26-' || (i % 7) || '-C', i, '{cur}-' || i, 0.01, 1,
                   CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END, 1, i % 4, 90000, 0.012, 60, NULL, NULL, NULL, '{cur}'
            FROM generate_series(1, {n // 2}) i""")
        conn.execute(f"""
            INSERT INTO option_orderbook_depth ({OLD_DEPTH_COLS}, currency)
            SELECT {t0} + i * interval '5 minutes', '{cur}-27DEC26-' || (i % 7) || '-C', i, 2, ARRAY[0.01, 0.009],
                   ARRAY[1, 2], ARRAY[0.011], ARRAY[3], 0.01, 0.011, 0.0105, 90000, '{cur}'
            FROM generate_series(1, 40) i""")


def _old_rows(conn, table: str, cols: str, cur: str) -> list[tuple]:
    return conn.execute(f"SELECT {cols} FROM {table} WHERE currency = %s ORDER BY 1, 2", (cur,)).fetchall()


def test_the_0003_layout_is_converted_with_every_row_kept(empty_dsn, engine):
    with psycopg.connect(empty_dsn) as conn:
        old = migrate.load_migrations(LAYOUT_0003)
        assert [m.name for m in old] == ["0001_tables.sql", "0002_views_and_compat.sql", "0003_timescaledb.sql"]
        migrate.migrate(conn, migrations=old, hooks=False)   # as landed: 0003 ran its TimescaleDB set-up itself
        conn.execute("SELECT collector_ensure_currency('SOL')")  # a currency added the old way: a view
        _fill_old_layout(conn)
        if engine == "timescaledb":  # the old tables were hypertables: compress what they hold
            assert conn.execute("SELECT count(compress_chunk(c)) FROM show_chunks('option_quotes') c").fetchone()[0] >= 1
        before = {cur: (_old_rows(conn, "option_quotes", OLD_QUOTE_COLS, cur),
                        _old_rows(conn, "option_trades", OLD_TRADE_COLS, cur),
                        _old_rows(conn, "option_orderbook_depth", OLD_DEPTH_COLS, cur)) for cur in ("BTC", "ETH", "SOL")}
    with psycopg.connect(empty_dsn) as conn:  # a new session: time_bucket/first/last on the search_path
        hourly_before = conn.execute(
            "SELECT time_bucket('1 hour', timestamp) AS hour, instrument, first(best_bid_price, timestamp), "
            "max(best_bid_price), min(best_bid_price), last(best_bid_price, timestamp), count(*) "
            "FROM option_quotes WHERE currency = 'ETH' GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    applied = _migrate(empty_dsn)        # the 0003 applied under its old checksum is accepted
    assert applied == [m.name for m in migrate.load_migrations() if m.version >= 4]
    assert applied[0] == "0004_per_currency_tables.sql"
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        for cur, (quotes, trades, depth) in before.items():
            p = cur.lower()
            assert len(quotes) > 0
            assert conn.execute(f"SELECT {OLD_QUOTE_COLS} FROM {p}_option_quotes ORDER BY 1, 2").fetchall() == quotes
            assert conn.execute(f"SELECT {OLD_TRADE_COLS} FROM {p}_option_trades ORDER BY 1, 2").fetchall() == trades
            assert conn.execute(f"SELECT {OLD_DEPTH_COLS} FROM {p}_option_orderbook_depth ORDER BY 1, 2").fetchall() == depth
        for gone in ("option_quotes", "option_trades", "option_orderbook_depth", "option_quotes_1h"):
            assert conn.execute("SELECT to_regclass(%s)", (gone,)).fetchone()[0] is None, gone
        kinds = dict(conn.execute("SELECT relname, relkind FROM pg_class WHERE relname ~ '^(btc|eth|sol)_option_(quotes|trades|orderbook_depth)$'"))
        assert kinds == {f"{c}_option_{t}": "r" for c in ("btc", "eth", "sol") for t in ("quotes", "trades", "orderbook_depth")}
        if engine == "timescaledb":
            hts = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
            assert set(kinds) <= hts
        hourly = conn.execute("SELECT hour, instrument, bid_open, bid_high, bid_low, bid_close, quotes "
                              "FROM eth_option_quotes_1h ORDER BY 1, 2").fetchall()
        assert hourly == hourly_before and len(hourly) > 10
    assert _migrate(empty_dsn) == []


LEGACY_DDL = """
CREATE TABLE eth_option_quotes (
    timestamp timestamptz NOT NULL, instrument text NOT NULL, best_bid_price NUMERIC(18,8), best_bid_amount NUMERIC(18,8),
    best_ask_price NUMERIC(18,8), best_ask_amount NUMERIC(18,8), underlying_price NUMERIC(18,8), mark_price NUMERIC(18,8),
    delta NUMERIC(8,6), gamma NUMERIC(8,6), theta NUMERIC(8,6), vega NUMERIC(8,6), rho NUMERIC(8,6),
    implied_volatility NUMERIC(8,4), bid_iv NUMERIC(8,4), ask_iv NUMERIC(8,4), mark_iv NUMERIC(8,4),
    open_interest NUMERIC(18,8), last_price NUMERIC(18,8), PRIMARY KEY (timestamp, instrument));
CREATE TABLE data_gaps (gap_id serial PRIMARY KEY, instrument text, start_time timestamptz, end_time timestamptz,
    duration_sec int, cause text, created_at timestamptz DEFAULT now());
INSERT INTO eth_option_quotes (timestamp, instrument, best_bid_price) VALUES (now(), 'ETH-27DEC26-3000-C', 0.1);
"""


def test_a_database_of_another_layout_is_refused_and_left_unchanged(empty_dsn):
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(LEGACY_DDL)
        before = conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1").fetchall()
    out = subprocess.run([sys.executable, "-m", "collector.cli", "--database-url", empty_dsn, "db", "migrate"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "data_gaps, eth_option_quotes" in lines[0] and "never migrated by the collector" in lines[0]
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        after = conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1").fetchall()
        assert after == before
        assert conn.execute("SELECT count(*) FROM eth_option_quotes").fetchone()[0] == 1


def test_a_foreign_table_named_like_a_new_currency_is_refused(empty_dsn):
    _migrate(empty_dsn)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE sol_option_trades (timestamp timestamptz, trade_id text, instrument text, price numeric)")
    with pytest.raises(migrate.MigrationError, match="sol_option_trades already exists with another layout.*trade_seq"):
        _migrate(empty_dsn, currencies=("BTC", "ETH", "SOL"))
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('sol_option_quotes')").fetchone()[0] is None  # nothing half-made


def test_time_bucket_first_last_work_on_either_engine_in_a_test_database(conn):
    """The user's queries call time_bucket/first/last unqualified: on plain PostgreSQL through 0002's
    database search_path, which the test databases (clones of a template) carry like a real one."""
    row = conn.execute("SELECT time_bucket('1 hour', timestamptz '2024-03-01 10:17+00'), "
                       "first(x, t), last(x, t) FROM (VALUES (1.0::float8, timestamptz '2024-03-01 10:00+00'), "
                       "(2.0, timestamptz '2024-03-01 10:01+00')) v(x, t)").fetchone()
    assert row[1:] == (1, 2) and row[0].hour == 10 and row[0].minute == 0


def test_a_rerun_for_a_known_currency_takes_no_share_lock_on_its_tables(conn):
    """`db migrate` runs collector_ensure_currency() for every currency at every run, while the streams
    insert: it must not take a SHARE lock (CREATE INDEX) on tables that have their indexes already (a re-run
    of the playbook deadlocked against the streams' inserts)."""
    with conn.transaction():
        conn.execute("SELECT collector_ensure_currency('BTC')")
        held = conn.execute("""
            SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            WHERE l.pid = pg_backend_pid() AND c.relkind IN ('r', 'p')   -- tables and chunks (the plain view is replaced)
              AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock',
                                                          'AccessExclusiveLock')""").fetchall()
    assert held == []
