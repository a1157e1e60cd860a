"""`collector db import-legacy` on a legacy database of N rows: its progress and final table, rows/s and
the process's peak RSS, at two sizes (the RSS must not grow with the source).

    .venv/bin/python bench/legacy_import.py [--sizes 1000000,2000000] [--engine plain|timescaledb]

One throwaway cluster (bench/harness.py) holds both databases: ``crypto_data`` in the Docker
collector's layout (tests/legacy/legacy_schema.sql; with ``--engine timescaledb`` its tick tables are
hypertables with every chunk compressed) and ``bench``, ours, migrated. The legacy rows are made by
``generate_series`` on the server: 80 % eth_option_quotes, 14 % eth_option_trades, the rest spread over
every other table (BTC quotes and trades, depth JSON, perpetual ticks, the REST tables, index, funding).
The import runs as a subprocess (``collector db import-legacy --from …``); its stderr (the progress
lines) and stdout (the final table) are shown; rows/s = rows read / wall time of the process, peak RSS =
its ``ru_maxrss`` (``wait4``). The CPU seconds of the process and of its two PostgreSQL backends
(sampled from /proc) give the rate the import would reach with the box's two cores to itself (all its
CPU seconds spread over both): the wall rate depends on what else runs on the box (the load average
is printed). Between the sizes both databases are made again.

Figures: ``legacy_rows[N]``, ``legacy_import_rows_per_s[N]``, ``legacy_import_peak_rss_mb[N]``,
``legacy_import_cpu_s[N][…]``, ``legacy_import_cpu_bound_rows_per_s[N]``, ``load_average[N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from harness import COLLECTOR, cpu_s, emit, stop_all, throwaway_db  # noqa: E402

SCHEMA = ROOT / "tests" / "legacy" / "legacy_schema.sql"
T0 = "2025-01-01 00:00:00+00"


def fill(dsn: str, n: int, timescaledb: bool) -> int:
    """The legacy database with about ``n`` rows; returns the exact count."""
    q = int(n * 0.80)
    t = int(n * 0.14)
    small = max((n - q - t) // 12, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
        if timescaledb:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for table in ("eth_option_quotes", "eth_option_trades", "perpetuals_quotes"):
                conn.execute(f"SELECT create_hypertable('{table}', 'timestamp', chunk_time_interval => INTERVAL '1 day')")
                conn.execute(f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument')")
        inst = "'ETH-27JUN25-' || (2000 + (g % 200) * 25) || CASE WHEN g % 2 = 0 THEN '-C' ELSE '-P' END"
        # quotes: 200 instruments, one tick every 10 ms overall (their 100 ms ticker channel, 20 books at once)
        conn.execute(f"""
            INSERT INTO eth_option_quotes SELECT '{T0}'::timestamptz + g * INTERVAL '10 milliseconds', {inst},
                round((0.01 + (g % 997) / 10000.0)::numeric, 8), 10 + g % 50, round((0.011 + (g % 991) / 10000.0)::numeric, 8),
                5 + g % 40, 3300 + (g % 100), 0.0105, 0.5, 0.001, -0.5, 2.1, 0.3, 65.5, 64, 67, 65.5, 1000, 0.0104
            FROM generate_series(1, {q}) g""")
        conn.execute(f"""
            INSERT INTO eth_option_trades SELECT '{T0}'::timestamptz + g * INTERVAL '57 milliseconds', {inst},
                'ETH-' || (2000000 + g), 0.0105, 1 + g % 10, CASE WHEN g % 3 = 0 THEN 'sell' ELSE 'buy' END, 65.2, 3300.5
            FROM generate_series(1, {t}) g""")
        conn.execute(f"""
            INSERT INTO btc_option_quotes (timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price,
                best_ask_amount, mark_price, underlying_price, open_interest, volume_24h)
            SELECT '{T0}'::timestamptz + g * INTERVAL '100 milliseconds', 'BTC-27JUN25-' || (90000 + (g % 50) * 1000) || '-C',
                0.05, 1, 0.051, 2, 0.0505, 95000, 10, 3 FROM generate_series(1, {small * 3}) g""")
        conn.execute(f"""
            INSERT INTO btc_option_trades SELECT '{T0}'::timestamptz + g * INTERVAL '1 second', 'BTC-' || (500000 + g),
                'BTC-27JUN25-' || (90000 + (g % 50) * 1000) || '-C', 0.05, 0.1, 'buy', 50.5, 95000
            FROM generate_series(1, {small}) g""")
        for cur in ("eth", "btc"):
            conn.execute(f"""
                INSERT INTO {cur}_option_orderbook_depth SELECT '{T0}'::timestamptz + (g / 50) * INTERVAL '5 minutes',
                    '{cur.upper()}-27JUN25-' || (3000 + (g % 50) * 25) || '-C',
                    (SELECT jsonb_agg(jsonb_build_array(0.05 - l * 0.0005, l + 1)) FROM generate_series(0, 19) l),
                    (SELECT jsonb_agg(jsonb_build_array(0.051 + l * 0.0005, l + 2)) FROM generate_series(0, 19) l),
                    0.0505, 3300, 100, 5 FROM generate_series(1, {small // 2}) g""")
        conn.execute(f"""
            INSERT INTO perpetuals_quotes SELECT '{T0}'::timestamptz + g * INTERVAL '100 milliseconds',
                CASE WHEN g % 2 = 0 THEN 'BTC-PERPETUAL' ELSE 'ETH-PERPETUAL' END, 95000, 1000, 95000.5, 2000, 95000.2,
                94999, 0.00001234, 1e9 FROM generate_series(1, {small * 2}) g""")
        conn.execute(f"""
            INSERT INTO perpetuals_trades SELECT '{T0}'::timestamptz + g * INTERVAL '200 milliseconds', (388000000 + g)::text,
                CASE WHEN g % 2 = 0 THEN 'BTC-PERPETUAL' ELSE 'ETH-PERPETUAL' END, 95000, 10, 'buy', g % 4, g % 1000 = 0
            FROM generate_series(1, {small}) g""")
        conn.execute(f"""
            INSERT INTO perpetuals_orderbook_depth SELECT '{T0}'::timestamptz + g * INTERVAL '5 minutes', 'BTC-PERPETUAL',
                '[[95000, 1000], [94999.5, 200]]', '[[95000.5, 300]]', 95000.2, 94999, 0.0001, 1e9, 5e8
            FROM generate_series(1, {small // 4}) g""")
        for table, expiry in (("perpetuals_ohlcv", ""), ("futures_ohlcv", "'2025-06-27', ")):
            conn.execute(f"""
                INSERT INTO {table} SELECT '{T0}'::timestamptz + g * INTERVAL '1 minute', 'BTC-27JUN25', {expiry}
                    95000, 95010, 94990, 95005, 12.5 FROM generate_series(1, {small}) g""")
        conn.execute(f"""
            INSERT INTO options_ohlcv SELECT '{T0}'::timestamptz + (g / 100) * INTERVAL '1 minute',
                'ETH-27JUN25-' || (2000 + (g % 100) * 25) || '-C', 2000 + (g % 100) * 25, '2025-06-27', 'call',
                0.01, 0.01, 0.01, 0.01, 0, 0 FROM generate_series(1, {small}) g""")
        conn.execute(f"""
            INSERT INTO options_greeks SELECT '{T0}'::timestamptz + (g / 100) * INTERVAL '1 hour',
                'ETH-27JUN25-' || (2000 + (g % 100) * 25) || '-C', 0.5, 0.001, 2.1, -0.5, 0.3
            FROM generate_series(1, {small}) g""")
        conn.execute(f"""
            INSERT INTO funding_rates SELECT '{T0}'::timestamptz + (g / 2) * INTERVAL '8 hours',
                CASE WHEN g % 2 = 0 THEN 'BTC-PERPETUAL' ELSE 'ETH-PERPETUAL' END, 0.0001
            FROM generate_series(1, {min(small, 1000)}) g""")  # 8-hourly: ~5 months (TimescaleDB: a chunk a day)
        conn.execute(f"""
            INSERT INTO index_prices SELECT '{T0}'::timestamptz + (g / 2) * INTERVAL '1 minute',
                CASE WHEN g % 2 = 0 THEN 'BTC' ELSE 'ETH' END, 95000 FROM generate_series(1, {small}) g""")
        if timescaledb:
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('eth_option_quotes') c")
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('eth_option_trades') c")
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('perpetuals_quotes') c")
        conn.execute("ANALYZE")
        total = 0
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall():
            total += conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # bench-only, static names
    return total


class BackendCpu(threading.Thread):
    """CPU seconds of the import's PostgreSQL backends (found by application_name, sampled from /proc)."""

    def __init__(self, admin_dsn: str) -> None:
        super().__init__(daemon=True)
        self.admin_dsn = admin_dsn
        self.seen: dict[int, tuple[str, float]] = {}  # pid -> (database, last CPU seconds)
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            while not self.done.is_set():
                for pid, dbname in conn.execute("SELECT pid, datname FROM pg_stat_activity "
                                                "WHERE application_name LIKE 'deribit-collector-import%'").fetchall():
                    try:
                        self.seen[pid] = (dbname, cpu_s(pid))
                    except OSError:
                        pass
                self.done.wait(0.1)

    def by_database(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for dbname, cpu in self.seen.values():
            out[dbname] = out.get(dbname, 0.0) + cpu
        return out


def run_import(source: str, target: str, admin: str) -> tuple[float, float, float, dict[str, float], int]:
    """(wall s, peak RSS MB, CPU s of the process, CPU s of the backends per database, exit code) of one
    `collector db import-legacy`; its output is shown as it comes."""
    env = {**os.environ, "DATABASE_URL": target, "LOG_LEVEL": "WARNING"}
    backends = BackendCpu(admin)
    backends.start()
    t = time.perf_counter()
    proc = subprocess.Popen([COLLECTOR, "db", "import-legacy", "--from", source], env=env, cwd="/")
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t
    backends.done.set()
    backends.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (took, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, backends.by_database(),
            proc.returncode)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,2000000", help="legacy rows per run, comma-separated")
    ap.add_argument("--engine", choices=("plain", "timescaledb"), default="plain")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-legacy-"))
    cluster = None
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            if cluster is not None:
                with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                    conn.execute("DROP DATABASE crypto_data WITH (FORCE)")
                    conn.execute("DROP DATABASE bench WITH (FORCE)")
            cluster, _ = throwaway_db(tmp, ["BTC", "ETH"], "-c shared_buffers=256MB", engine=args.engine)  # (re)made
            cluster.create_database("crypto_data")
            source, target = cluster.dsn("crypto_data"), cluster.dsn("bench")
            t = time.perf_counter()
            rows = fill(source, size, args.engine == "timescaledb")
            print(f"# built a legacy database of {rows:,} rows in {time.perf_counter() - t:.0f} s "
                  f"({args.engine}); importing", flush=True)
            load0 = os.getloadavg()[0]
            took, rss, cpu, backends, code = run_import(source, target, cluster.dsn())
            if code != 0:
                print(f"# the import exited {code}", file=sys.stderr)
                return 1
            src_cpu, tgt_cpu = backends.get("crypto_data", 0.0), backends.get("bench", 0.0)
            emit(f"legacy_rows[{size}]", rows, "rows")
            emit(f"legacy_import_rows_per_s[{size}]", rows / took, "rows/s")
            emit(f"legacy_import_peak_rss_mb[{size}]", rss, "MB")
            emit(f"legacy_import_cpu_s[{size}][collector]", cpu, "s")
            emit(f"legacy_import_cpu_s[{size}][source_backend]", src_cpu, "s")
            emit(f"legacy_import_cpu_s[{size}][target_backend]", tgt_cpu, "s")
            # the rate if the import had the two cores of this box to itself (all its CPU spread over both)
            emit(f"legacy_import_cpu_bound_rows_per_s[{size}]", rows / max((tgt_cpu + src_cpu + cpu) / 2, 1e-9), "rows/s")
            emit(f"load_average[{size}]", (load0 + os.getloadavg()[0]) / 2, "(1 min, start/end mean)")
        return 0
    finally:
        stop_all([], cluster, tmp)


if __name__ == "__main__":
    sys.exit(main())
