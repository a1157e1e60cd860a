"""Migrations on an empty PostgreSQL: every relation, idempotence, checksums, the user's queries."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from collector.store import migrate, status

USER_RELATIONS = [
    "index_prices", "perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv", "options_greeks", "funding_rates",
    "perpetuals_orderbook_depth", "eth_option_quotes", "btc_option_quotes", "eth_option_trades",
    "btc_option_trades", "eth_option_orderbook_depth", "btc_option_orderbook_depth", "data_gaps",
    "collector_status", "option_quotes_1h", "eth_option_quotes_1h",
]

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
            if rel not in ("option_quotes_1h", "eth_option_quotes_1h"):
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
            INSERT INTO option_quotes (timestamp, instrument, currency, best_bid_price, best_bid_amount, best_ask_price, best_ask_amount)
            VALUES ('2026-11-25 10:05Z', 'ETH-27DEC26-3000-C', 'ETH', 0.10, 5, 0.11, 5),
                   ('2026-11-25 10:20Z', 'ETH-27DEC26-3000-C', 'ETH', 0.14, 5, 0.15, 5),
                   ('2026-11-25 10:40Z', 'ETH-27DEC26-3000-C', 'ETH', 0.08, 5, 0.09, 5),
                   ('2026-11-25 10:55Z', 'ETH-27DEC26-3000-C', 'ETH', 0.12, 5, 0.13, 5),
                   ('2026-11-25 11:01Z', 'ETH-27DEC26-3000-C', 'ETH', NULL, 0, 0.13, 5),
                   ('2026-11-25 10:30Z', 'BTC-27DEC26-90000-C', 'BTC', 0.5, 1, 0.6, 1)""")
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


def test_new_currency_needs_no_ddl(empty_dsn):
    _migrate(empty_dsn, currencies=("BTC", "ETH", "SOL"))
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO option_trades (timestamp, instrument, currency, trade_seq, trade_id, price, amount, direction) "
                     "VALUES (now(), 'SOL-27DEC26-200-C', 'SOL', 1, 'SOL-1', 0.01, 10, 'buy')")
        assert conn.execute("SELECT count(*) FROM sol_option_trades").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM eth_option_trades").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("SELECT collector_ensure_currency('x; drop table option_trades')")


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
    run = lambda *a: subprocess.run([sys.executable, "-m", "collector.cli", "--database-url", empty_dsn, *a],
                                    capture_output=True, text=True, timeout=60)
    first = run("db", "migrate")
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    second = run("db", "migrate")
    assert second.returncode == 0 and "up to date" in second.stdout
    st = run("db", "status")
    assert st.returncode == 0, st.stderr
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
