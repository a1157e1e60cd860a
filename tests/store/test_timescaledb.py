"""TimescaleDB for real (the vendored 2.28.3 built by bin/timescaledb): hypertables, compression,
continuous aggregates, writes into compressed chunks, the user's Month-1 aggregate verbatim, and a
server where TimescaleDB is installed but not preloaded.

The engine-independent behaviour (migrations, writer, jobs) runs on both engines through the ``engine``
parameter (tests/conftest.py); this module holds what only TimescaleDB has.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from pytest_postgresql import factories

from collector import records as R
from collector.store import migrate
from collector.store.spool import Spool
from collector.store.writer import BatchStore

from tests.pgtools import PG_CTL_TSDB, migrated_database, timescaledb_bindir

# installed (the extension's files are there) but NOT in shared_preload_libraries
pg_nopreload = factories.postgresql_proc(executable=PG_CTL_TSDB, host="127.0.0.1", port=None)

SHARED = {"index_prices": "index_name", "perpetuals_ohlcv": "instrument", "futures_ohlcv": "instrument",
          "options_ohlcv": "instrument", "options_greeks": "instrument", "funding_rates": "instrument",
          "perpetuals_orderbook_depth": "instrument", "perpetuals_quotes": "instrument",
          "perpetuals_trades": "instrument"}
PER_CURRENCY = {f"{c}_{t}": "instrument" for c in ("btc", "eth")
                for t in ("option_quotes", "option_trades", "option_orderbook_depth")}
HYPERTABLES = {**SHARED, **PER_CURRENCY}
OLD = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=10)

# The user's plan, "Month 1: Add Continuous Aggregates", verbatim
PLAN_MONTH1_CAGG = """
-- Pre-compute common queries (e.g., hourly OHLCV from tick data)
CREATE MATERIALIZED VIEW hourly_eth_options
WITH (timescaledb.continuous) AS
SELECT
  time_bucket('1 hour', timestamp) as hour,
  instrument,
  FIRST(best_bid_price, timestamp) as open,
  MAX(best_bid_price) as high,
  MIN(best_bid_price) as low,
  LAST(best_bid_price, timestamp) as close
FROM eth_option_quotes
GROUP BY hour, instrument;
"""


@pytest.fixture(scope="module")
def tsdb(request):
    timescaledb_bindir()
    return request.getfixturevalue("pg_tsdb")


@pytest.fixture
def tdsn(tsdb):
    return migrated_database(tsdb)


def q(dsn: str, query: str, *args):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query, args or None).fetchall()


def quote(ts: datetime, inst: str, bid: float, cur: str = "ETH") -> R.OptionQuote:
    return R.OptionQuote(ts, inst, cur, bid, 1.0, bid + 0.01, 1.0, bid + 0.005, 60.0)


def test_every_time_series_table_is_a_compressed_hypertable_with_daily_chunks(tdsn):
    got = dict(q(tdsn, "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"))
    assert set(got) == set(HYPERTABLES) and all(got.values())
    dims = dict(q(tdsn, "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions"))
    assert all(dims[t] == timedelta(days=1) for t in HYPERTABLES)
    seg = dict(q(tdsn, "SELECT hypertable_name, attname FROM timescaledb_information.compression_settings "
                       "WHERE segmentby_column_index = 1"))
    assert seg == HYPERTABLES
    jobs = q(tdsn, "SELECT hypertable_name, proc_name, config FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL")
    comp = {h: c for h, p, c in jobs if p == "policy_compression"}
    assert set(comp) == set(HYPERTABLES) and all(c["compress_after"] == "7 days" for c in comp.values())
    caggs = {v for (v,) in q(tdsn, "SELECT view_name FROM timescaledb_information.continuous_aggregates")}
    assert caggs == {"btc_option_quotes_1h", "eth_option_quotes_1h"}
    refresh = [c for h, p, c in jobs if p == "policy_refresh_continuous_aggregate"]
    assert len(refresh) == 2 and all(c["end_offset"] == "01:00:00" and c["start_offset"] is None for c in refresh)


def test_hourly_aggregate_is_refreshed_and_real_time(tdsn, tmp_path):
    inst = "ETH-27DEC26-3000-C"
    hour = OLD.replace(minute=0, second=0)
    store = BatchStore(tdsn, Spool(tmp_path / "spool", 1 << 26))
    try:
        store.write([quote(hour + timedelta(minutes=m), inst, b) for m, b in ((5, 0.10), (20, 0.14), (40, 0.08), (55, 0.12))])
        with psycopg.connect(tdsn, autocommit=True) as conn:
            conn.execute("CALL refresh_continuous_aggregate('eth_option_quotes_1h', NULL, now() - INTERVAL '1 hour')")
        # a quote of this very minute is in the aggregate before any refresh (real-time aggregation)
        now = datetime.now(timezone.utc)
        store.write([quote(now, inst, 0.2)])
    finally:
        store.close()
    rows = q(tdsn, "SELECT hour, bid_open, bid_high, bid_low, bid_close, quotes FROM eth_option_quotes_1h ORDER BY hour")
    assert rows[0] == (hour, 0.10, 0.14, 0.08, 0.12, 4)
    assert rows[-1][1:] == (0.2, 0.2, 0.2, 0.2, 1) and len(rows) == 2
    assert q(tdsn, "SELECT count(*) FROM btc_option_quotes_1h") == [(0,)]


def test_the_plans_month1_continuous_aggregate_runs_verbatim(tdsn):
    inst = "ETH-27DEC26-3000-C"
    hour = OLD.replace(minute=0, second=0)
    with psycopg.connect(tdsn, autocommit=True) as conn:
        conn.execute("INSERT INTO eth_option_quotes (timestamp, instrument, best_bid_price) VALUES "
                     "(%s, %s, 0.10), (%s, %s, 0.14), (%s, %s, 0.08), (%s, %s, 0.12)",
                     [hour + timedelta(minutes=m) if i % 2 == 0 else inst
                      for m in (5, 20, 40, 55) for i in (0, 1)])
        conn.execute(PLAN_MONTH1_CAGG)  # WITH DATA (the default): materialized at once
        got = conn.execute("SELECT hour, instrument, open, high, low, close FROM hourly_eth_options").fetchall()
    assert got == [(hour, inst, 0.10, 0.14, 0.08, 0.12)]


def test_a_mixed_batch_into_compressed_chunks_adds_every_new_row_and_no_duplicate(tdsn, tmp_path):
    """TimescaleDB #7672/#6302/#5553: ON CONFLICT DO NOTHING into compressed chunks must neither stop at
    the first conflict nor let duplicates in -- a restart backfill is exactly such a batch."""
    insts = [f"ETH-27DEC26-{3000 + 100 * k}-C" for k in range(5)]
    stored_q = [quote(OLD + timedelta(seconds=i), insts[i % 5], 0.1 + i * 1e-4) for i in range(0, 4000, 2)]
    stored_t = [R.OptionTrade(OLD + timedelta(seconds=i), insts[i % 5], "ETH", i, f"ETH-{i}", 0.1, 1.0, "buy")
                for i in range(0, 4000, 2)]
    store = BatchStore(tdsn, Spool(tmp_path / "spool", 1 << 26))
    try:
        assert store.write(stored_q + stored_t).inserted == 4000
        chunks = q(tdsn, "SELECT count(compress_chunk(c)) FROM show_chunks('eth_option_quotes') c")[0][0]
        chunks += q(tdsn, "SELECT count(compress_chunk(c)) FROM show_chunks('eth_option_trades') c")[0][0]
        assert chunks >= 2
        assert q(tdsn, "SELECT count(*) FROM timescaledb_information.chunks WHERE is_compressed "
                       "AND hypertable_name IN ('eth_option_quotes', 'eth_option_trades')")[0][0] == chunks
        # interleaved: stored, new, stored, new, ... (the first row of the batch conflicts)
        new_q = [quote(OLD + timedelta(seconds=i), insts[i % 5], 0.1 + i * 1e-4) for i in range(1, 4000, 2)]
        new_t = [R.OptionTrade(OLD + timedelta(seconds=i), insts[i % 5], "ETH", i, f"ETH-{i}", 0.1, 1.0, "buy")
                 for i in range(1, 4000, 2)]
        mixed = [r for pair in zip(stored_q, new_q) for r in pair] + [r for pair in zip(stored_t, new_t) for r in pair]
        res = store.write(mixed)
        assert (res.inserted, res.duplicates, res.rejected, res.spooled) == (4000, 4000, 0, 0)
        again = store.write(mixed)
        assert (again.inserted, again.duplicates) == (0, 8000)
    finally:
        store.close()
    assert q(tdsn, "SELECT count(*), count(DISTINCT (instrument, timestamp)) FROM eth_option_quotes") == [(4000, 4000)]
    assert q(tdsn, "SELECT count(*), count(DISTINCT (instrument, trade_seq)) FROM eth_option_trades") == [(4000, 4000)]
    assert q(tdsn, "SELECT array_agg(trade_seq ORDER BY trade_seq) = array(SELECT generate_series(0, 3999)::bigint) "
                   "FROM eth_option_trades") == [(True,)]


def _cli(dsn: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector.cli", "--database-url", dsn, *args],
                          capture_output=True, text=True, timeout=120)


def test_installed_but_not_preloaded_gives_plain_tables_then_converts_with_the_data(request, tmp_path):
    timescaledb_bindir()
    proc = request.getfixturevalue("pg_nopreload")
    from tests.pgtools import create_database, dsn_of
    dsn = dsn_of(proc, create_database(proc))
    assert "timescaledb" not in q(dsn, "SHOW shared_preload_libraries")[0][0]
    assert q(dsn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") == [(1,)]

    first = _cli(dsn, "db", "migrate")
    assert first.returncode == 0, first.stderr
    said = [line for line in first.stderr.splitlines() if "shared_preload_libraries" in line]
    assert len(said) == 1 and said[0].startswith("collector: warning: TimescaleDB"), first.stderr  # one clear line
    assert "restart PostgreSQL" in said[0] and "collector db migrate" in said[0]
    assert q(dsn, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == [(0,)]
    store = BatchStore(dsn, Spool(tmp_path / "spool", 1 << 26))
    rows = [quote(OLD + timedelta(minutes=i), "ETH-27DEC26-3000-C", 0.1 + i / 1000) for i in range(300)]
    rows += [R.OptionTrade(OLD + timedelta(minutes=i), "BTC-27DEC26-90000-C", "BTC", i, str(i), 0.1, 1.0, "sell")
             for i in range(50)]
    rows += [R.IndexPrice(OLD + timedelta(minutes=i), "btc_usd", 90000.0 + i) for i in range(100)]
    assert store.write(rows).inserted == 450
    store.close()
    status = _cli(dsn, "db", "status", "--json")   # reads the plain tables; the 10-day-old rows are stale (exit 1)
    report = json.loads(status.stdout)
    assert status.returncode == 1 and report["failures"], status.stderr
    assert {f["check"].split(":")[0] for f in report["failures"]} <= {"stale", "hole"}, report["failures"]
    assert {r["relation"]: r["rows"] for r in report["relations"]}["eth_option_quotes"] >= 0

    # the user adds the preload and restarts: the next migrate converts everything, data kept
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'timescaledb'")
    proc.stop()
    proc.start()
    second = _cli(dsn, "db", "migrate")
    assert second.returncode == 0, second.stderr
    assert "shared_preload_libraries" not in second.stderr
    hts = {h for (h,) in q(dsn, "SELECT hypertable_name FROM timescaledb_information.hypertables")}
    assert hts == set(HYPERTABLES)
    assert q(dsn, "SELECT count(*), min(best_bid_price), max(best_bid_price) FROM eth_option_quotes") == [(300, 0.1, 0.1 + 299 / 1000)]
    assert q(dsn, "SELECT count(*) FROM btc_option_trades") == [(50,)]
    assert q(dsn, "SELECT count(*) FROM index_prices") == [(100,)]
    # the hourly aggregate, now continuous, was filled from the rows already there
    assert q(dsn, "SELECT sum(quotes) FROM eth_option_quotes_1h") == [(300,)]
    assert q(dsn, "SELECT count(*) FROM timescaledb_information.continuous_aggregates") == [(2,)]
    st = _cli(dsn, "db", "status", "--json")
    doc = json.loads(st.stdout)
    assert st.returncode == 1 and {f["check"].split(":")[0] for f in doc["failures"]} <= {"stale", "hole"}   # old rows
    assert {r["relation"]: r["rows"] for r in doc["relations"]}["eth_option_quotes"] == 300
    assert _cli(dsn, "db", "migrate").stdout.strip() == "database is up to date"


def test_a_fresh_migration_says_nothing_but_what_it_applied(tsdb):
    """No warning from TimescaleDB either (e.g. a unique key column that compression neither segments
    nor orders by: a write into a compressed chunk would then check its conflicts slowly)."""
    from tests.pgtools import create_database, dsn_of
    dsn = dsn_of(tsdb, create_database(tsdb))
    warnings: list[str] = []
    with psycopg.connect(dsn) as conn:
        assert len(migrate.migrate(conn, ["BTC", "ETH", "SOL"], on_warning=warnings.append)) >= 4
    assert warnings == []
    orderby = dict(q(dsn, "SELECT hypertable_name, string_agg(attname, ', ' ORDER BY orderby_column_index) "
                          "FROM timescaledb_information.compression_settings WHERE orderby_column_index IS NOT NULL "
                          "GROUP BY 1"))
    assert orderby["sol_option_trades"] == "timestamp, trade_seq" and orderby["sol_option_quotes"] == "timestamp"
    assert orderby["perpetuals_trades"] == "timestamp, trade_seq" and orderby["perpetuals_quotes"] == "timestamp"


def test_migrate_reports_an_outdated_extension_version(tdsn):
    """The check behind the warning: what is installed in the database vs what the server has."""
    installed, available = q(tdsn, "SELECT e.extversion, a.default_version FROM pg_extension e "
                                   "JOIN pg_available_extensions a ON a.name = e.extname WHERE e.extname = 'timescaledb'")[0]
    assert installed == available == "2.28.3"
    warnings: list[str] = []
    with psycopg.connect(tdsn) as conn:
        assert migrate.migrate(conn, ["BTC", "ETH"], on_warning=warnings.append) == []
    assert warnings == []  # nothing to say when they agree
