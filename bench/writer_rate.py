"""Writer throughput into a throwaway PostgreSQL: rows/s of the idempotent COPY path.

    .venv/bin/python bench/writer_rate.py [--rows 300000] [--batch 5000]

Prints one line per figure: `name value unit`. Starts its own PostgreSQL cluster in a temp dir
(initdb/pg_ctl; as root it runs as the postgres user) on a free port, and removes it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from collector import records as R
from collector.store import migrate
from collector.store.localpg import LocalCluster
from collector.store.queue import WriteQueue
from collector.store.spool import Spool
from collector.store.writer import BatchStore

T0 = datetime(2026, 11, 25, tzinfo=timezone.utc)


def quotes(n: int, offset: int = 0) -> list[R.OptionQuote]:
    names = [f"ETH-27DEC26-{1000 + 100 * k}-{'C' if k % 2 else 'P'}" for k in range(400)]
    return [R.OptionQuote(T0 + timedelta(milliseconds=offset + i), names[i % 400], "ETH", 0.0123, 15.0, 0.0131, 22.0,
                          0.0127, 61.2, 60.1, 62.3, 3021.5, "ETH-27DEC26", 3019.25, 1200.0) for i in range(n)]


def trades(n: int) -> list[R.OptionTrade]:
    return [R.OptionTrade(T0 + timedelta(milliseconds=i), f"BTC-27DEC26-{90000 + 1000 * (i % 40)}-C", "BTC", i, str(i),
                          0.0125, 1.0, "buy", 1.0, 1, 91000.0, 0.0124, 55.0) for i in range(n)]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def emit(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.0f} {unit}" if value >= 100 else f"{name} {value:.3g} {unit}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-writer-"))
    cluster = LocalCluster(tmp / "pg")
    try:
        cluster.start("-c shared_buffers=256MB -c synchronous_commit=on")
        dsn = cluster.create_database("bench")
        with psycopg.connect(dsn) as conn:
            migrate.migrate(conn, ["BTC", "ETH"])
        n, b = args.rows, args.batch

        t = time.perf_counter()
        rows = quotes(n)
        emit("record_build_rows_per_s", n / (time.perf_counter() - t), "rows/s")

        store = BatchStore(dsn, Spool(tmp / "spool", 8 * 1024**3))
        t, c = time.perf_counter(), cpu()
        for i in range(0, n, b):
            store.write(rows[i:i + b])
        wall = time.perf_counter() - t
        emit("writer_copy_quotes_rows_per_s", n / wall, "rows/s")
        emit("writer_copy_quotes_client_cpu_pct", 100 * (cpu() - c) / wall, "%")

        t = time.perf_counter()
        for i in range(0, n, b):
            store.write(rows[i:i + b])
        emit("writer_duplicates_rows_per_s", n / (time.perf_counter() - t), "rows/s")
        assert store.stats.inserted == n and store.stats.duplicates == n

        tr = trades(n)
        t = time.perf_counter()
        for i in range(0, n, b):
            store.write(tr[i:i + b])
        emit("writer_copy_trades_rows_per_s", n / (time.perf_counter() - t), "rows/s")

        more = quotes(n, offset=10_000_000)
        q = WriteQueue(store, batch_rows=b, max_age_s=0.2, max_rows=10 * n)

        async def stream():
            flusher = asyncio.create_task(q.run())
            t0 = time.perf_counter()
            for i, r in enumerate(more):
                q.put(r)
                if i % 2000 == 1999:
                    await asyncio.sleep(0)
            await q.close(timeout_s=600)
            flusher.cancel()
            return time.perf_counter() - t0
        emit("writer_queue_quotes_rows_per_s", n / asyncio.run(stream()), "rows/s")

        spool = Spool(tmp / "spool2", 8 * 1024**3)
        t = time.perf_counter()
        for i in range(0, n, b):
            spool.append("option_quotes", rows[i:i + b])
        emit("spool_append_rows_per_s", n / (time.perf_counter() - t), "rows/s")
        emit("spool_bytes_per_quote", spool.bytes / n, "B")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE eth_option_quotes")  # quotes() are ETH
        replayer = BatchStore(dsn, spool)
        t = time.perf_counter()
        replayer.flush_spool()
        emit("spool_replay_rows_per_s", n / (time.perf_counter() - t), "rows/s")
        store.close()
        replayer.close()
    finally:
        cluster.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
