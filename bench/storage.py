"""Bytes per row on disk (table + indexes + TOAST) for each time-series table, on plain PostgreSQL.

    .venv/bin/python bench/storage.py [--rows 200000]

Writes rows shaped like the real ones (a few hundred instruments, realistic prices, time order) through
the collector's own writer into a throwaway cluster, VACUUMs, and prints `bytes_per_row[TABLE] N B`,
then a growth estimate for a given rate of quote changes and trades (`--quotes-per-s`, `--trades-per-s`,
per currency) plus the REST tables at their cadences. Plain tables only: TimescaleDB's compression is
measured by bench/timescale.py (a simulated day of both chains, before and after compress_chunk).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collector import records as R  # noqa: E402
from collector.store import migrate  # noqa: E402
from collector.store.localpg import LocalCluster  # noqa: E402
from collector.store.spool import Spool  # noqa: E402
from collector.store.writer import BatchStore  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def options(n: int = 400) -> list[str]:
    days = ["29NOV26", "30NOV26", "4DEC26", "11DEC26", "25DEC26", "29JAN27", "26MAR27", "25JUN27"]
    return [f"BTC-{days[k % len(days)]}-{80000 + 1000 * (k // 16)}-{'C' if k % 2 else 'P'}" for k in range(n)]


def rows_for(table: str, n: int, rng: random.Random) -> list[R.Record]:
    names = options()
    out: list[R.Record] = []
    if table == "btc_option_quotes":
        for i in range(n):
            name = names[rng.randrange(len(names))]
            bid = round(rng.uniform(0.0005, 0.2), 4)
            out.append(R.OptionQuote(T0 + timedelta(milliseconds=37 * i), name, "BTC", bid, rng.choice([0.1, 1.0, 5.0, 12.3]),
                                     round(bid + 0.0005 * rng.randint(1, 20), 4), rng.choice([0.1, 2.0, 7.5]),
                                     round(bid + 0.0003, 5), rng.uniform(40, 90), rng.uniform(40, 90), rng.uniform(40, 90),
                                     rng.uniform(90000, 110000), name.rsplit("-", 2)[0], rng.uniform(90000, 110000),
                                     rng.uniform(0, 5000)))
    elif table == "btc_option_trades":
        seqs: dict[str, int] = {}
        for i in range(n):
            name = names[rng.randrange(len(names))]
            seqs[name] = seqs.get(name, rng.randint(1000, 90000)) + 1
            out.append(R.OptionTrade(T0 + timedelta(milliseconds=411 * i), name, "BTC", seqs[name], f"BTC-{300000000 + i}",
                                     round(rng.uniform(0.0005, 0.2), 4), rng.choice([0.1, 1.0, 25.0]),
                                     rng.choice(["buy", "sell"]),
                                     1.0, rng.randint(0, 3), rng.uniform(90000, 110000), rng.uniform(0.0005, 0.2),
                                     rng.uniform(40, 90)))
    elif table == "perpetuals_ohlcv":
        for i in range(n):
            p = rng.uniform(90000, 110000)
            out.append(R.Candle(T0 + timedelta(minutes=i // 10), f"BTC-{i % 10}", "BTC", p, p + 20, p - 20, p + 5,
                                rng.uniform(0, 500), rng.uniform(0, 5e6)))
    elif table == "options_ohlcv":
        for i in range(n):
            name = names[i % len(names)]
            b = rng.uniform(0.0005, 0.2)
            traded = rng.random() < 0.1
            out.append(R.OptionBar(T0 + timedelta(minutes=i // len(names)), name, "BTC",
                                   *([b, b, b, b, 1.0] if traded else [None] * 5), b, b + 0.001, b + 0.0005, b + 0.0004,
                                   rng.uniform(40, 90), rng.uniform(40, 90), rng.uniform(40, 90), rng.uniform(90000, 110000),
                                   name.rsplit("-", 2)[0], rng.uniform(90000, 110000), rng.uniform(0, 300), rng.uniform(0, 5000)))
    elif table == "options_greeks":
        for i in range(n):
            name = names[i % len(names)]
            out.append(R.Greeks(T0 + timedelta(hours=i // len(names)), name, "BTC", rng.uniform(-1, 1), rng.uniform(0, 1e-4),
                                rng.uniform(0, 200), rng.uniform(-300, 0), rng.uniform(-50, 50), rng.uniform(40, 90),
                                rng.uniform(40, 90), rng.uniform(40, 90), rng.uniform(0.0005, 0.2), rng.uniform(90000, 110000),
                                rng.uniform(90000, 110000), rng.uniform(0, 5000)))
    elif table == "perpetuals_orderbook_depth":
        for i in range(n):
            bids = sorted((rng.uniform(99000, 100000) for _ in range(20)), reverse=True)
            asks = sorted(rng.uniform(100000, 101000) for _ in range(20))
            out.append(R.BookDepth(T0 + timedelta(minutes=5 * (i // 2)), f"BTC-P{i % 2}", "BTC", 10**9 + i, 20,
                                   bids, [rng.uniform(10, 1e5) for _ in range(20)], asks,
                                   [rng.uniform(10, 1e5) for _ in range(20)], bids[0], asks[0]))
    elif table == "index_prices":
        for i in range(n):
            out.append(R.IndexPrice(T0 + timedelta(milliseconds=1000 * i), "btc_usd", rng.uniform(90000, 110000)))
    return out


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.0f} {unit}" if abs(value) >= 100 else f"{name} {value:.3g} {unit}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--quotes-per-s", type=float, default=100.0, help="quote changes per second per currency")
    ap.add_argument("--trades-per-s", type=float, default=2.0, help="option trades per second per currency")
    ap.add_argument("--options", type=int, default=800, help="live options per currency")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    cluster = LocalCluster(tmp / "pg")
    rng = random.Random(1)
    per_row: dict[str, float] = {}
    try:
        cluster.start()
        dsn = cluster.create_database("bench")
        with psycopg.connect(dsn) as conn:
            migrate.migrate(conn, ["BTC"])
        store = BatchStore(dsn, Spool(tmp / "spool", 1 << 30))
        tables = ["btc_option_quotes", "btc_option_trades", "perpetuals_ohlcv", "options_ohlcv", "options_greeks",
                  "perpetuals_orderbook_depth", "index_prices"]
        for table in tables:
            n = args.rows if table not in ("perpetuals_orderbook_depth",) else args.rows // 10
            rows = rows_for(table, n, rng)
            for i in range(0, n, 5000):
                store.write(rows[i:i + 5000])
        store.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            for table in tables:
                size, count = conn.execute(
                    "SELECT pg_total_relation_size(%s::regclass), (SELECT count(*) FROM " + table + ")",  # noqa: S608
                    (table,)).fetchone()
                per_row[table] = size / count
                emit(f"bytes_per_row[{table}]", size / count, "B")
        day = 86400
        quotes = per_row["btc_option_quotes"] * args.quotes_per_s * day
        trades = per_row["btc_option_trades"] * args.trades_per_s * day
        bars = per_row["options_ohlcv"] * args.options * 1440
        greeks = per_row["options_greeks"] * args.options * 24
        candles = per_row["perpetuals_ohlcv"] * 10 * 1440
        emit("growth_quotes_mb_per_day_per_currency", quotes / 1e6, "MB/day")
        emit("growth_trades_mb_per_day_per_currency", trades / 1e6, "MB/day")
        emit("growth_options_ohlcv_mb_per_day_per_currency", bars / 1e6, "MB/day")
        emit("growth_greeks_mb_per_day_per_currency", greeks / 1e6, "MB/day")
        emit("growth_candles_mb_per_day_per_currency", candles / 1e6, "MB/day")
        emit("growth_total_gb_per_month_per_currency", 30 * (quotes + trades + bars + greeks + candles) / 1e9, "GB/month")
    finally:
        cluster.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
