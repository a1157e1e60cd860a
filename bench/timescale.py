"""TimescaleDB vs plain PostgreSQL for the per-currency option tables: bytes per row before and after
compression, the writer's rate into hypertables vs plain tables, and that rate as a table grows.

    .venv/bin/python bench/timescale.py storage [--fraction 0.125] [--hours 24]
    .venv/bin/python bench/timescale.py growth [--fill-rows 50000000] [--fill-days 50]

Both parts start two throwaway clusters of the same PostgreSQL 15 binaries, one plain and one with
TimescaleDB preloaded (``bin/timescaledb``), migrate them with ``collector.store.migrate`` (plain tables
on one, hypertables with 1-day chunks, compression segmented by instrument on the other), pause
TimescaleDB's policy jobs (the benchmark compresses when it wants), and remove everything afterwards.

``storage`` (issue 10 item 7 a, b): one simulated UTC day (``bench/daysim.py``: the simulator's market
model, rows made by the collector's parsers) of both chains, ``--fraction`` of the instruments at
their full per-instrument density (the plan's 20M BTC + 15M ETH quotes/day for the whole chain), so each
table gets one real 1-day chunk. Every batch (5000 rows of one currency, as one `collector ws` process
writes) goes through ``BatchStore.write`` into both clusters, the order alternating per batch, and each
write is timed alone (generation excluded). Then VACUUM ANALYZE, sizes (``hypertable_detailed_size``;
``pg_total_relation_size`` on the plain side), ``compress_chunk`` of every chunk, sizes again
(``hypertable_compression_stats``) and the day extrapolated to the whole chain.

``growth`` (item 7 c): BTC quotes only. The writer's rate for new rows at the "now" end, first into
empty tables, then after ``--fill-rows`` older rows (``INSERT … SELECT generate_series``, quote-shaped,
spread over ``--fill-days`` days: as many chunks) were put in each, both fills at once. Autovacuum is
off in this part (a 50M-row fill would start it during the measurement); a CHECKPOINT precedes each
measurement. The old chunks are not compressed (production would have compressed all but 7 days).

Figures: ``name value unit``; ``[table]`` names the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import daysim  # noqa: E402
from harness import emit, stop_all, throwaway_db  # noqa: E402

from collector import records as R  # noqa: E402
from collector.store.spool import Spool  # noqa: E402
from collector.store.writer import BatchStore  # noqa: E402

TABLES = [f"{c}_option_{k}" for c in ("btc", "eth") for k in ("quotes", "trades", "orderbook_depth")]
SERVER = "-c shared_buffers=256MB"


def two_clusters(tmp: Path, currencies: list[str], options: str = SERVER) -> dict[str, tuple]:
    return {engine: throwaway_db(tmp, currencies, options, engine=engine, name=engine)
            for engine in ("timescaledb", "plain")}


def timed_write(store: BatchStore, rows: list) -> float:
    t = time.perf_counter()
    res = store.write(rows)
    took = time.perf_counter() - t
    if res.spooled or res.rejected or res.overflow:
        raise RuntimeError(f"the writer did not commit a batch: {res}")
    return took


def sizes_plain(conn: psycopg.Connection, table: str) -> tuple[int, int, int]:
    """(rows, heap + TOAST bytes, index bytes)."""
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # bench-only, static names
    total, idx = conn.execute("SELECT pg_total_relation_size(%s::regclass), pg_indexes_size(%s::regclass)",
                              (table, table)).fetchone()
    return rows, total - idx, idx


def sizes_hyper(conn: psycopg.Connection, table: str) -> tuple[int, int, int]:
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    tb, ib, toast = conn.execute("SELECT table_bytes, index_bytes, toast_bytes FROM hypertable_detailed_size(%s::regclass)",
                                 (table,)).fetchone()
    return rows, (tb or 0) + (toast or 0), ib or 0


def storage(args) -> None:
    spec = daysim.DaySpec(dt.date.fromisoformat(args.day), fraction=args.fraction,
                          trades_per_day=args.trades_per_day, end_s=int(3600 * args.hours))
    for cur, (kept, total) in daysim.kept_options(spec).items():
        emit(f"tsdb_sim_options_kept[{cur}]", kept, f"of {total} live options")
    tmp = Path(tempfile.mkdtemp(prefix="bench-tsdb-"))
    clusters: dict[str, tuple] = {}
    stores: dict[str, BatchStore] = {}
    try:
        clusters = two_clusters(tmp, ["BTC", "ETH"])
        stores = {e: BatchStore(dsn, Spool(tmp / f"spool-{e}", 1 << 30)) for e, (_, dsn) in clusters.items()}
        spent = {e: 0.0 for e in stores}
        written = 0
        gen_t = time.perf_counter()
        for k, batch in enumerate(daysim.simulate(spec, args.batch)):
            order = ("timescaledb", "plain") if k % 2 == 0 else ("plain", "timescaledb")
            for e in order:
                spent[e] += timed_write(stores[e], batch)
            written += len(batch)
            if k % 200 == 0:
                print(f"# {written} rows, {time.perf_counter() - gen_t:.0f} s", file=sys.stderr, flush=True)
        for s in stores.values():
            s.close()
        emit("tsdb_sim_rows", written, "rows")
        for e in spent:
            emit(f"tsdb_write_{e}_rows_per_s", written / spent[e], "rows/s")
        emit("tsdb_write_hypertable_vs_plain", spent["plain"] / spent["timescaledb"], "x")

        with psycopg.connect(clusters["plain"][1], autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            plain = {t: sizes_plain(conn, t) for t in TABLES}
        with psycopg.connect(clusters["timescaledb"][1], autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            before = {t: sizes_hyper(conn, t) for t in TABLES}
            chunks = {t: conn.execute("SELECT count(*) FROM show_chunks(%s::regclass)", (t,)).fetchone()[0]
                      for t in TABLES}
            t0 = time.perf_counter()
            for t in TABLES:
                conn.execute("SELECT compress_chunk(c) FROM show_chunks(%s::regclass) c", (t,))
            emit("tsdb_compress_rows_per_s", written / (time.perf_counter() - t0), "rows/s")
            conn.execute("VACUUM ANALYZE")
            after = {t: sizes_hyper(conn, t) for t in TABLES}
            stats = {t: conn.execute("SELECT before_compression_total_bytes, after_compression_total_bytes "
                                     "FROM hypertable_compression_stats(%s::regclass)", (t,)).fetchone()
                     for t in TABLES}
        day_share = args.fraction * args.hours / 24
        total_before = total_after = total_plain = 0.0
        for t in TABLES:
            n, heap, idx = before[t]
            if not n:
                continue
            emit(f"tsdb_rows[{t}]", n, f"rows in {chunks[t]} chunk(s)")
            emit(f"plain_bytes_per_row[{t}]", sum(plain[t][1:]) / plain[t][0], "B")
            emit(f"tsdb_bytes_per_row_uncompressed[{t}]", (heap + idx) / n, f"B (index {idx / n:.0f} B)")
            emit(f"tsdb_bytes_per_row_compressed[{t}]", sum(after[t][1:]) / n, f"B (index {after[t][2] / n:.1f} B)")
            b, a = stats[t]
            emit(f"tsdb_compression_ratio[{t}]", b / a, f"x ({100 * (1 - a / b):.1f} % smaller)")
            cur = t[:3].upper()
            rows_day = daysim.PLAN_QUOTES_PER_DAY[cur] if t.endswith("quotes") else n / day_share
            mb = 1e-6 * rows_day
            total_plain += mb * sum(plain[t][1:]) / plain[t][0]
            total_before += mb * (heap + idx) / n
            total_after += mb * sum(after[t][1:]) / n
            emit(f"tsdb_day_mb_compressed[{t}]", mb * sum(after[t][1:]) / n,
                 f"MB/day for {rows_day / 1e6:.3g}M rows/day (uncompressed {mb * (heap + idx) / n:.0f} MB)")
        emit("tsdb_day_total_mb_plain", total_plain, "MB/day")
        emit("tsdb_day_total_mb_uncompressed", total_before, "MB/day")
        emit("tsdb_day_total_mb_compressed", total_after, "MB/day")
        emit("tsdb_day_total_reduction_pct", 100 * (1 - total_after / total_before), "%")
    finally:
        for s in stores.values():
            s.close()
        for cluster, _ in clusters.values():
            cluster.stop()
        stop_all([], None, tmp)


FILL = """
INSERT INTO btc_option_quotes (timestamp, instrument, best_bid_price, best_bid_amount, best_ask_price,
    best_ask_amount, mark_price, mark_iv, bid_iv, ask_iv, underlying_price, underlying_index, index_price,
    open_interest, delta, gamma, vega, theta, rho, last_price, volume_24h, implied_volatility)
SELECT %(t0)s::timestamptz + make_interval(secs => g * %(step)s::float8),
       (%(names)s::text[])[1 + g %% %(n)s],
       b, round((0.1 * (1 + floor(random() * 60)))::numeric, 1)::float8,
       b + 0.0005 * (1 + floor(random() * 20)), round((0.1 * (1 + floor(random() * 60)))::numeric, 1)::float8,
       b + 0.0004, iv, iv - random() * 2, iv + random() * 2,
       ix * (1 + random() * 0.02), 'BTC-' || split_part((%(names)s::text[])[1 + g %% %(n)s], '-', 2), ix,
       round((random() * 5000)::numeric, 1)::float8, random() * 2 - 1, random() * 1e-4, random() * 200,
       -random() * 300, random() * 100 - 50, CASE WHEN random() < 0.7 THEN b END,
       round((random() * 300)::numeric, 1)::float8, iv
FROM generate_series(0, %(rows)s - 1) g,
     LATERAL (SELECT round((0.0005 + random() * 0.2)::numeric, 4)::float8 + 0 * g AS b,
                     round((40 + random() * 50)::numeric, 2)::float8 + 0 * g AS iv,
                     round((90000 + 20000 * random())::numeric, 2)::float8 + 0 * g AS ix) x
"""


def option_names(n: int = 800) -> list[str]:
    days = ["1DEC26", "2DEC26", "3DEC26", "4DEC26", "11DEC26", "18DEC26", "25DEC26", "29JAN27", "26FEB27",
            "26MAR27", "25JUN27", "24SEP27"]
    return [f"BTC-{days[k % len(days)]}-{60000 + 1000 * (k // (2 * len(days)))}-{'C' if k % 2 else 'P'}"
            for k in range(n)]


def fill(dsn: str, t0: dt.datetime, days: int, rows: int, deadline: float, done: dict, key: str) -> None:
    per_day = rows // days
    with psycopg.connect(dsn, autocommit=True) as conn:
        for d in range(days):
            if time.monotonic() > deadline:
                return
            conn.execute(FILL, {"t0": t0 + dt.timedelta(days=d), "step": 86400 / per_day, "names": option_names(),
                                "n": 800, "rows": per_day})
            done[key] += per_day


def growth(args) -> None:
    now_day = dt.date.fromisoformat(args.day)
    spec = daysim.DaySpec(now_day, currencies=("BTC",), trades_per_day=0, depth_every_s=10**9,
                          end_s=int(4 * args.probe_rows / (daysim.PLAN_QUOTES_PER_DAY["BTC"] / 86400)) + 60)
    quotes = [r for b in daysim.simulate(spec) for r in b if isinstance(r, R.OptionQuote)]
    slices = [quotes[i * args.probe_rows:(i + 1) * args.probe_rows] for i in range(4)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-tsdb-growth-"))
    clusters: dict[str, tuple] = {}
    try:
        clusters = two_clusters(tmp, ["BTC"], SERVER + " -c autovacuum=off")

        def probe(phase: str, parts: list[list]) -> None:
            spent = {e: 0.0 for e in clusters}
            n = 0
            for k, rows in enumerate(parts):
                for e in (("timescaledb", "plain") if k % 2 == 0 else ("plain", "timescaledb")):
                    with psycopg.connect(clusters[e][1], autocommit=True) as conn:
                        conn.execute("CHECKPOINT")
                    store = BatchStore(clusters[e][1], Spool(tmp / f"spool-{e}", 1 << 30))
                    took = sum(timed_write(store, rows[i:i + args.batch]) for i in range(0, len(rows), args.batch))
                    store.close()
                    spent[e] += took
                    emit(f"tsdb_growth_{phase}_{e}_run{k + 1}_rows_per_s", len(rows) / took, "rows/s")
                n += len(rows)
            for e in spent:
                emit(f"tsdb_growth_{phase}_{e}_rows_per_s", n / spent[e], "rows/s")

        probe("empty", slices[:2])
        t0 = dt.datetime.combine(now_day - dt.timedelta(days=args.fill_days), dt.time(), dt.timezone.utc)
        done = {e: 0 for e in clusters}
        deadline = time.monotonic() + 60 * args.fill_minutes
        started = time.monotonic()
        threads = [threading.Thread(target=fill, args=(dsn, t0, args.fill_days, args.fill_rows, deadline, done, e))
                   for e, (_, dsn) in clusters.items()]
        for th in threads:
            th.start()
        while any(th.is_alive() for th in threads):
            threads[0].join(30) if threads[0].is_alive() else threads[1].join(30)
            print(f"# fill {done} after {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        for e, (_, dsn) in clusters.items():
            with psycopg.connect(dsn, autocommit=True) as conn:
                rows = conn.execute("SELECT count(*) FROM btc_option_quotes").fetchone()[0]
                size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            emit(f"tsdb_growth_filled_{e}_rows", rows, "rows")
            emit(f"tsdb_growth_filled_{e}_gb", size / 1e9, "GB (database)")
        with psycopg.connect(clusters["timescaledb"][1]) as conn:
            emit("tsdb_growth_chunks", conn.execute("SELECT count(*) FROM show_chunks('btc_option_quotes')")
                 .fetchone()[0], "chunks")
        emit("tsdb_growth_fill_wall_s", time.monotonic() - started, "s (both fills at once)")
        probe("full", slices[2:])
    finally:
        for cluster, _ in clusters.values():
            cluster.stop()
        stop_all([], None, tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    st = sub.add_parser("storage", help="bytes per row before/after compression, hypertable vs plain write rate")
    st.add_argument("--fraction", type=float, default=0.125, help="share of each chain's options simulated")
    st.add_argument("--hours", type=float, default=24.0, help="hours of the day simulated (from 00:00 UTC)")
    st.add_argument("--trades-per-day", type=float, default=40_000.0,
                    help="option trades per currency per day, whole chain (an assumption)")
    st.add_argument("--day", default="2026-11-20", help="the UTC day simulated")
    st.add_argument("--batch", type=int, default=5000, help="rows per write (COLLECTOR_BATCH_ROWS)")
    gr = sub.add_parser("growth", help="the writer's rate into empty vs filled tables, plain vs hypertable")
    gr.add_argument("--fill-rows", type=int, default=50_000_000)
    gr.add_argument("--fill-days", type=int, default=50)
    gr.add_argument("--fill-minutes", type=float, default=25.0, help="stop filling after this (rows filled are reported)")
    gr.add_argument("--probe-rows", type=int, default=150_000, help="rows per timed run (2 runs per engine and phase)")
    gr.add_argument("--day", default="2026-11-20", help="the 'now' day the probe rows are in")
    gr.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    storage(args) if args.part == "storage" else growth(args)


if __name__ == "__main__":
    main()
