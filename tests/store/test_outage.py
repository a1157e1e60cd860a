"""The database stopped for real (pg_ctl stop) under a stream, and a process killed while it was down."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from collector import records as R
from collector.store.queue import WriteQueue
from collector.store.spool import Spool
from collector.store.writer import BatchStore

from tests.pgtools import engine_server, migrated_database, server_pair

# a server of these tests' own: they stop and start it
pg_outage_plain, pg_outage_tsdb = server_pair()
pg_outage = engine_server("pg_outage_plain", "pg_outage_tsdb")
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
N = 100_000


@pytest.fixture
def outage_dsn(pg_outage):
    return migrated_database(pg_outage)


def quote(i: int) -> R.OptionQuote:
    return R.OptionQuote(T0 + timedelta(milliseconds=i), f"ETH-27DEC26-{3000 + (i % 50) * 100}-C", "ETH",
                         0.1, 1.0, 0.11, 2.0, 0.105, 60.0)


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM eth_option_quotes").fetchone()[0]


def test_database_stopped_mid_stream_ends_with_exactly_all_rows(pg_outage, outage_dsn, tmp_path):
    spool = Spool(tmp_path / "spool", 512 * 1024**2)
    store = BatchStore(outage_dsn, spool, retry_initial_s=0.05, retry_max_s=0.5)
    q = WriteQueue(store, batch_rows=2000, max_age_s=0.05, max_rows=50_000)
    seen_spool = []

    async def produce():
        flusher = asyncio.create_task(q.run())
        stopper = None
        for i in range(N):
            q.put(quote(i))
            if i % 1000 == 999:
                await asyncio.sleep(0.002)
            if i == N // 4:  # stop the server for real while the stream goes on
                stopper = asyncio.create_task(asyncio.to_thread(pg_outage.stop))
            if i == N // 2:
                await stopper
                while not spool.bytes:  # the writer noticed and is spooling
                    await asyncio.sleep(0.01)
                seen_spool.append(spool.bytes)
            if i == 3 * N // 4:
                await asyncio.to_thread(pg_outage.start)
        await q.close(timeout_s=60)
        flusher.cancel()

    asyncio.run(produce())
    assert seen_spool and seen_spool[0] > 0
    deadline = time.monotonic() + 60
    while not store.flush_spool() and time.monotonic() < deadline:
        time.sleep(0.2)
    store.close()
    assert count(outage_dsn) == N, (store.stats, q.dropped, sorted(p.name for p in (tmp_path / "spool").rglob("*")))
    assert list((tmp_path / "spool").glob("*.spool")) == []
    assert store.stats.spooled > 0 and store.stats.replayed == store.stats.spooled
    assert q.dropped == 0


CHILD = r"""
import sys, time
from datetime import datetime, timedelta, timezone
from collector import records as R
from collector.store.spool import Spool
from collector.store.writer import BatchStore
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
store = BatchStore(sys.argv[1], Spool(sys.argv[2], 1 << 30), retry_initial_s=0.01)
n = 0
for b in range(20):
    rows = [R.OptionTrade(T0 + timedelta(seconds=n + i), "BTC-27DEC26-100000-C", "BTC", n + i, str(n + i), 0.01, 1.0, "buy") for i in range(500)]
    assert store.write(rows).spooled == 500
    n += 500
print(n, flush=True)
while True:
    time.sleep(1)
"""


def test_process_killed_while_database_down_replays_its_spool_on_next_start(pg_outage, outage_dsn, tmp_path):
    pg_outage.stop()
    try:
        child = subprocess.Popen([sys.executable, "-c", CHILD, outage_dsn, str(tmp_path / "spool")],
                                 stdout=subprocess.PIPE, text=True)
        spooled = int(child.stdout.readline())
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        pg_outage.start()
    assert spooled == 10_000
    store = BatchStore(outage_dsn, Spool(tmp_path / "spool", 1 << 30), retry_initial_s=0.1)
    deadline = time.monotonic() + 60   # the server may still be starting up: the store retries
    while not store.flush_spool() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not store.spool.segments()
    store.close()
    with psycopg.connect(outage_dsn) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT trade_seq) FROM btc_option_trades").fetchone() == (10_000, 10_000)


def test_full_queue_and_full_spool_drop_loudly_and_record_the_gap(dsn, tmp_path, caplog):
    store = BatchStore("postgresql://nobody@127.0.0.1:1/nothing", Spool(tmp_path / "spool", 1024**2), retry_initial_s=60)
    q = WriteQueue(store, batch_rows=100, max_age_s=10, max_rows=1000)

    async def flood():
        for i in range(50_000):  # far more than 1 MiB of spool
            q.put(quote(i))
    asyncio.run(flood())
    assert q.dropped > 0
    assert store.spool.is_full() or store.spool.bytes > 0.9 * 1024**2
    assert len(q) <= 1000
    assert any(r.message == "writer_overflow" for r in caplog.records)
    assert q.state() == "overflow"
    # once a database takes writes, the loss is recorded in data_gaps with its time range
    gaps = q.take_gaps()
    live = BatchStore(dsn, Spool(tmp_path / "spool2", 1024**2))
    live.write(gaps)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT relation, cause, recoverable, missing_count, gap_start <= gap_end FROM data_gaps").fetchone()
    assert row == ("eth_option_quotes", "writer_overflow", False, q.dropped, True)
    live.close()


def _postgres_pids(datadir) -> list[int]:
    from pathlib import Path
    master = int((Path(datadir) / "postmaster.pid").read_text().split()[0])
    kids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                kids.append(int(d.name))
        except (OSError, ValueError, IndexError):
            pass
    return [master, *kids]


def test_hung_database_the_spool_takes_the_rows_and_memory_stays_flat(pg_outage, outage_dsn, tmp_path):
    """SIGSTOPped PostgreSQL: the flush hangs (nothing fails); the queue stays at one batch, the rest spools."""
    store = BatchStore(outage_dsn, Spool(tmp_path / "spool", 512 * 1024**2))
    q = WriteQueue(store, batch_rows=1000, max_age_s=0.05, max_rows=1_000_000, max_batch_rows=4000, stall_s=0.5)
    total = 40_000

    async def produce() -> int:
        flusher = asyncio.create_task(q.run())
        peak = 0
        for i in range(5000):
            q.put(quote(i))
        await asyncio.sleep(0.5)
        pids = _postgres_pids(pg_outage.datadir)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            for i in range(5000, total):
                q.put(quote(i))
                peak = max(peak, len(q))
                if i % 1000 == 999:
                    await asyncio.sleep(0.1)
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        await q.close(timeout_s=60)
        flusher.cancel()
        return peak

    peak = asyncio.run(produce())
    assert peak <= 4000
    assert store.stats.spooled > 0
    deadline = time.monotonic() + 60
    while not store.flush_spool() and time.monotonic() < deadline:
        time.sleep(0.2)
    store.close()
    assert count(outage_dsn) == total and q.dropped == 0
