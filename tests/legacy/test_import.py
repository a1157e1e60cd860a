"""`collector db import-legacy` the whole way: a database in the Docker collector's layout (conftest:
plain, or TimescaleDB with compressed chunks) -> ours -> every quirk's outcome checked -> a second run
adds nothing -> a run killed half-way resumes to the same result as one that was not."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import datetime, timezone

import psycopg

from collector.legacy import job
from tests.legacy.conftest import compressed_chunks
from tests.pgtools import ROOT, create_database, drop_database, dsn_of

OURS = [f"{c}_option_{k}" for c in ("btc", "eth", "sol") for k in ("quotes", "trades", "orderbook_depth")] + [
    "perpetuals_quotes", "perpetuals_trades", "perpetuals_orderbook_depth", "perpetuals_ohlcv", "futures_ohlcv",
    "options_ohlcv", "options_greeks", "funding_rates", "index_prices", "data_gaps", "collector_status"]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def run(source: str, target: str, **kw) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = job.run(source, target, out=out, err=err, **kw)
    return code, out.getvalue(), err.getvalue()


def run_cli(source: str, target: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": target}
    return subprocess.run([sys.executable, "-m", "collector.cli", "db", "import-legacy", "--from", source, *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def report_row(out: str, table: str) -> dict[str, int]:
    """The final table's counts of one source table."""
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0] == table:
            first = 1 if table == "total" else 2  # the total has no target
            read, written, dup, rej = (int(c.replace(",", "")) for c in cells[first:first + 4])
            return {"read": read, "written": written, "duplicates": dup, "rejected": rej}
    raise AssertionError(f"no row for {table} in:\n{out}")


def snapshot(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        out = {}
        for table in OURS:
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                out[table] = None
                continue
            out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
        return out


def rows(dsn: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def test_import_then_again(legacy_dsn, dsn, engine):
    if engine == "timescaledb":
        assert compressed_chunks(legacy_dsn) >= 3  # the source's tick tables really are compressed
    with psycopg.connect(dsn) as conn:  # a trade the live collector already stored, with its real trade_seq
        conn.execute("INSERT INTO eth_option_trades (timestamp, instrument, trade_seq, trade_id, price, amount, direction) "
                     "VALUES ('2025-01-01 00:00:03+00', 'ETH-27JUN25-3000-C', 17, 'ETH-2696057', 0.0131, 2, 'buy')")

    code, out, err = run(legacy_dsn, dsn)
    assert code == 0, out + err

    # quotes: NUMERIC -> double precision, every ticker kept (unchanged ones too: 300 in, 300 stored)
    assert rows(dsn, "SELECT count(*) FROM eth_option_quotes") == [(300,)]
    q = rows(dsn, "SELECT best_bid_price, best_bid_amount, best_ask_price, mark_price, mark_iv, implied_volatility, bid_iv, "
                  "delta, gamma, theta, underlying_price, open_interest, last_price FROM eth_option_quotes "
                  "WHERE instrument = 'ETH-27JUN25-3000-C' ORDER BY timestamp LIMIT 1")
    assert q == [(0.01234567, 12.5, 0.01334567, 0.0128, 65.4321, 65.4321, 60.1, 0.512345, 0.001234, -1.234567, 3301.25,
                  1234.5, 0.0127)]
    assert rows(dsn, "SELECT best_bid_price, mark_iv, implied_volatility, volume_24h FROM btc_option_quotes ORDER BY timestamp") == [
        (0.0512345678, 55.5, 55.5, 12.75), (0.0512345678, 56.25, 56.25, 12.75)]  # no mark_iv: their implied_volatility

    # trades: trade_seq = -(the number in trade_id); the one we had stays as it was; two rejected
    assert rows(dsn, "SELECT trade_seq, trade_id, price, amount, direction, iv, index_price FROM eth_option_trades ORDER BY timestamp") == [
        (-2696055, "ETH-2696055", 0.0125, 3.0, "buy", 65.5, 3301.5), (-2696056, "ETH-2696056", 0.013, 1.5, "sell", 66.0, 3302.0),
        (17, "ETH-2696057", 0.0131, 2.0, "buy", None, None)]
    assert report_row(out, "eth_option_trades") == {"read": 5, "written": 2, "duplicates": 1, "rejected": 2}
    assert "rejected from eth_option_trades: 1 (trade_id without a number)" in out
    assert "rejected from eth_option_trades: 1 (no price)" in out
    assert rows(dsn, "SELECT trade_seq, trade_id FROM btc_option_trades") == [(-48000001, "BTC-48000001")]

    # depth: JSON levels -> arrays; the duplicate snapshot is one row; the malformed one rejected
    assert rows(dsn, "SELECT instrument, depth, bid_prices, bid_amounts, ask_prices, ask_amounts, best_bid_price, best_ask_price, "
                     "mark_price, change_id FROM eth_option_orderbook_depth ORDER BY instrument") == [
        ("ETH-27JUN25-2900-C", 1, [0.02], [1.0], [], [], 0.02, None, 0.021, None),
        ("ETH-27JUN25-3000-C", 3, [0.0125, 0.012, 0.0115], [10.0, 25.5, 3.0], [0.0135, 0.014], [4.0, 8.0], 0.0125, 0.0135,
         0.0128, None)]
    assert report_row(out, "eth_option_orderbook_depth") == {"read": 4, "written": 2, "duplicates": 1, "rejected": 1}

    # a currency we lacked: its tables were made
    assert rows(dsn, "SELECT instrument, best_bid_price, mark_price FROM sol_option_quotes") == [("SOL_USDC-27JUN25-200-C", 1.25, 1.3)]
    assert ("SOL",) in rows(dsn, "SELECT currency FROM collector_currencies")
    assert "created the tables of currency SOL" in out

    # perpetual ticks
    assert rows(dsn, "SELECT instrument, best_bid_price, funding_rate, funding_8h, open_interest FROM perpetuals_quotes ORDER BY 1") == [
        ("BTC-PERPETUAL", 95000.5, 0.00001234, None, 987654321.0), ("ETH-PERPETUAL", 3300.05, -0.00000567, None, 123456789.0)]
    assert rows(dsn, "SELECT trade_seq, trade_id, amount, direction, tick_direction, liquidation FROM perpetuals_trades ORDER BY timestamp") == [
        (-388457352, "388457352", 1000.0, "buy", 0, None), (-388457353, "388457353", 25000.0, "sell", 2, "true")]
    assert rows(dsn, "SELECT currency, depth, bid_prices, ask_amounts, best_bid_price, index_price FROM perpetuals_orderbook_depth") == [
        ("BTC", 2, [95000.5, 95000.0], [3400.0], 95000.5, 94998.5)]

    # REST tables; options_ohlcv: O=H=L=C is the mark price, 0 is missing
    assert rows(dsn, "SELECT currency, open, high, low, close, volume, cost FROM perpetuals_ohlcv") == [
        ("BTC", 95000.0, 95050.5, 94990.0, 95010.0, 123.45678901, None)]
    assert rows(dsn, "SELECT currency, close FROM futures_ohlcv") == [("BTC", 96010.0)]
    assert rows(dsn, "SELECT currency, open, high, low, close, volume, mark_price, mark_iv FROM options_ohlcv ORDER BY timestamp") == [
        ("ETH", None, None, None, None, None, 0.0128, None),
        ("ETH", 0.0125, 0.0131, 0.0124, 0.013, 4.5, None, 0.6543),
        ("ETH", None, None, None, None, None, None, None)]
    assert rows(dsn, "SELECT currency, delta, gamma, vega, theta, rho FROM options_greeks") == [
        ("BTC", 0.456789, 0.000012, 12.345678, -4.567891, 1.234567)]
    assert rows(dsn, "SELECT instrument, currency, interest_8h, interest_1h FROM funding_rates") == [
        ("BTC-PERPETUAL", "BTC", 0.0001234567, None)]
    assert rows(dsn, "SELECT index_name, price FROM index_prices ORDER BY 1") == [("btc_usd", 95000.12345678), ("eth_usd", 3300.5)]

    # their bookkeeping is not ours
    assert rows(dsn, "SELECT (SELECT count(*) FROM data_gaps), (SELECT count(*) FROM collector_status)") == [(0, 0)]
    assert re.search(r"bookkeeping.*: collector_status, data_gaps, instrument_metadata, lifecycle_events", out)
    assert re.search(r"^eth_option_quotes -> eth_option_quotes: 300/~[\d,]+ rows, [\d,]+ rows/s, done$", err, re.M), err

    # a second run adds nothing (and reads nothing: every table was read to its end)
    before = snapshot(dsn)
    code, out2, err2 = run(legacy_dsn, dsn)
    assert code == 0, out2 + err2
    assert report_row(out2, "total") == {"read": 0, "written": 0, "duplicates": 0, "rejected": 0}
    assert snapshot(dsn) == before
    # --full reads everything again and finds it all there
    code, out3, _ = run(legacy_dsn, dsn, full=True)
    assert code == 0
    total = report_row(out3, "total")
    assert total["written"] == 0 and total["read"] == report_row(out, "total")["read"]
    assert snapshot(dsn) == before


def test_killed_half_way_resumes(legacy_dsn, dsn, second_dsn):
    # killed (SIGKILL) with the third batch of eth_option_quotes staged but not committed
    killed = run_cli(legacy_dsn, dsn, "--jobs", "1", "--batch-rows", "40", "--kill-after-batches", "2")
    assert killed.returncode == -9, killed.stderr
    assert rows(dsn, "SELECT count(*) FROM eth_option_quotes") == [(80,)]
    assert rows(dsn, "SELECT high_water, finished_at FROM legacy_import_progress WHERE source_table = 'eth_option_quotes'") == [
        (ts("2025-01-01 00:00:07.9"), None)]

    resumed = run_cli(legacy_dsn, dsn, "--jobs", "1", "--batch-rows", "40")
    assert resumed.returncode == 0, resumed.stderr
    line = report_row(resumed.stdout, "eth_option_quotes")
    assert line["read"] == 300 - 79 and line["written"] == 220 and line["duplicates"] == 1  # from the mark on
    assert "resumed from 2025-01-01 00:00:07" in resumed.stdout

    reference = run_cli(legacy_dsn, second_dsn)  # one run, never killed
    assert reference.returncode == 0, reference.stderr
    got, want = snapshot(dsn), snapshot(second_dsn)
    assert got == want
    assert len(got["eth_option_quotes"]) == 300


def test_dry_run_writes_nothing(legacy_dsn, dsn):
    code, out, _ = run(legacy_dsn, dsn, dry_run=True, exact=True)
    assert code == 0
    assert re.search(r"^eth_option_quotes\s+eth_option_quotes\s+300\s+from the start$", out, re.M), out
    assert re.search(r"^eth_option_orderbook_depth\s+eth_option_orderbook_depth\s+4\s", out, re.M)
    assert "would create the tables of currency SOL" in out
    assert "columns of eth_option_orderbook_depth with no column of ours (not carried over): underlying_price, " \
           "open_interest, volume_24h" in out
    assert rows(dsn, "SELECT to_regclass('sol_option_quotes'), to_regclass('legacy_import_progress'), "
                     "(SELECT count(*) FROM eth_option_quotes)") == [(None, None, 0)]
    code, out, _ = run(legacy_dsn, dsn, dry_run=True)
    assert re.search(r"^eth_option_quotes\s+eth_option_quotes\s+~300\s", out, re.M), out


def test_any_subset_of_tables_and_columns(pg, dsn):
    name = create_database(pg)
    src = dsn_of(pg, name)
    try:
        with psycopg.connect(src, autocommit=True) as conn:
            conn.execute("CREATE TABLE eth_option_trades (timestamp timestamptz, instrument text, trade_id text, "
                         "price numeric, amount numeric, direction text)")  # no iv, no index_price
            conn.execute("INSERT INTO eth_option_trades VALUES ('2025-01-01', 'ETH-27JUN25-3000-C', 'ETH-5', 0.01, 1, 'buy')")
            conn.execute("CREATE TABLE perpetuals_trades (timestamp timestamptz, instrument text, price numeric, "
                         "amount numeric, direction text)")  # no trade_id: cannot be keyed
            conn.execute("INSERT INTO perpetuals_trades VALUES ('2025-01-01', 'BTC-PERPETUAL', 95000, 10, 'buy')")
            conn.execute("CREATE TABLE index_prices (timestamp timestamp, currency text, price numeric)")  # no time zone: UTC
            conn.execute("INSERT INTO index_prices VALUES ('2025-01-01 12:00', 'ETH', 3300)")
            conn.execute("CREATE TABLE something_else (a int)")
        code, out, err = run(src, dsn)
        assert code == 0, out + err
        assert rows(dsn, "SELECT trade_seq, iv, index_price FROM eth_option_trades") == [(-5, None, None)]
        assert re.search(r"^perpetuals_trades\s+perpetuals_trades\s+0\s+0\s+0\s+0\s+not imported: no column trade_id$",
                         out, re.M), out
        assert "not imported (not a table the import knows): something_else" in out
        assert rows(dsn, "SELECT count(*) FROM perpetuals_trades") == [(0,)]
        assert rows(dsn, "SELECT timestamp, index_name, price FROM index_prices") == [(ts("2025-01-01 12:00"), "eth_usd", 3300.0)]

        code, out, _ = run(src, dsn, tables=["index_prices"], full=True)
        assert code == 0 and "eth_option_trades" not in out and report_row(out, "index_prices")["read"] == 1
        code, _, err = run(src, dsn, tables=["nope"])
        assert code == 2 and "--tables: nope not among" in err
    finally:
        drop_database(pg, name)


def test_refuses_a_database_of_ours(dsn, second_dsn):
    code, _, err = run(dsn, second_dsn)
    assert code == 2 and "is a database of this collector" in err


def test_our_database_must_be_migrated(legacy_dsn, pg):
    name = create_database(pg)
    try:
        code, _, err = run(legacy_dsn, dsn_of(pg, name))
        assert code == 2 and "run `collector db migrate` first" in err
    finally:
        drop_database(pg, name)


def test_killed_in_the_first_batch_leaves_nothing(legacy_dsn, dsn):
    killed = run_cli(legacy_dsn, dsn, "--tables", "eth_option_quotes", "--kill-after-batches", "0")
    assert killed.returncode == -9
    assert rows(dsn, "SELECT count(*), (SELECT high_water FROM legacy_import_progress) FROM eth_option_quotes") == [(0, None)]
    again = run_cli(legacy_dsn, dsn, "--tables", "eth_option_quotes")
    assert again.returncode == 0 and report_row(again.stdout, "eth_option_quotes")["written"] == 300


def test_parallel_parts_killed_and_resumed(legacy_dsn, dsn, second_dsn):
    """A table copied as 3 time ranges at once (each with its own mark), killed mid-way, resumes."""
    args = ("--jobs", "3", "--batch-rows", "20")
    killed = run_cli(legacy_dsn, dsn, *args, "--kill-after-batches", "2")
    assert killed.returncode == -9, killed.stderr
    parts = rows(dsn, "SELECT part, part_from, part_until, high_water, rows_read FROM legacy_import_progress "
                      "WHERE source_table = 'eth_option_quotes' ORDER BY part")
    assert [p[0] for p in parts] == [0, 1, 2]
    assert parts[0][1] is None and parts[2][2] is None and parts[0][2] == parts[1][1] < parts[1][2] == parts[2][1]
    stored = rows(dsn, "SELECT count(*) FROM eth_option_quotes")[0][0]
    assert 0 < stored < 300 and stored == sum(p[4] for p in parts)

    resumed = run_cli(legacy_dsn, dsn, *args)
    assert resumed.returncode == 0, resumed.stderr
    line = report_row(resumed.stdout, "eth_option_quotes")
    assert line["written"] == 300 - stored and line["read"] < 300
    reference = run_cli(legacy_dsn, second_dsn)
    assert reference.returncode == 0, reference.stderr
    assert snapshot(dsn) == snapshot(second_dsn)
