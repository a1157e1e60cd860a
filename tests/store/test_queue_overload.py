"""The queue past what the database absorbs: spills run off the event loop, memory stays bounded, and
every row ends in the database or the spool, exactly once."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone

import psycopg

from collector import records as R
from collector.store.queue import WriteQueue
from collector.store.spool import Spool
from collector.store.writer import BatchStore

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def quote(i: int) -> R.OptionQuote:
    return R.OptionQuote(T0 + timedelta(milliseconds=i), f"BTC-27DEC26-{90000 + (i % 40) * 1000}-C", "BTC",
                         0.1, 1.0, 0.11, 2.0, 0.105, 60.0)


class GatedSpool(Spool):
    """A real spool whose first segment write waits (like a slow disk's fsync) until the test opens the
    gate -- which the test can only do while the event loop runs."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.opened_while_writing: list[bool] = []
        self.writers: set[int] = set()

    def append(self, table, records):
        self.writers.add(threading.get_ident())
        if not self.entered.is_set():
            self.entered.set()
            self.opened_while_writing.append(self.gate.wait(10))  # the guard against a deadlock only
        return super().append(table, records)


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM btc_option_quotes").fetchall()[0][0]


def test_spills_run_off_the_event_loop_and_memory_stays_within_the_bound(dsn, tmp_path):
    spool = GatedSpool(tmp_path / "spool", 512 * 1024**2)
    store = BatchStore(dsn, spool)
    q = WriteQueue(store, batch_rows=100, max_age_s=0.05, max_rows=2000, max_batch_rows=400)
    n = 5000
    held: list[int] = []

    async def main() -> int:
        loop_thread = threading.get_ident()
        flusher = asyncio.create_task(q.run())
        for i in range(q.max_rows + 1):      # no await: the flusher cannot drain; the queue fills up
            q.put(quote(i))
            held.append(len(q) + q.spilling)
        # a spill has started (on the loop before the fix: put() was stuck in it until the guard)
        assert await asyncio.to_thread(spool.entered.wait, 10)
        spool.gate.set()                     # the loop is free while the spill thread writes
        for i in range(q.max_rows + 1, n):
            q.put(quote(i))
            held.append(len(q) + q.spilling)
            if i % 200 == 0:
                await asyncio.sleep(0)
        await q.close(timeout_s=60)
        flusher.cancel()
        return loop_thread

    loop_thread = asyncio.run(main())
    assert spool.opened_while_writing == [True]
    assert spool.writers - {loop_thread}          # a spill thread wrote segments
    assert q.spills_on_loop >= 1                  # full while the thread was busy: the loop spilled (backpressure)
    assert max(held) <= q.max_rows                # pending + with the spill thread: never above the bound
    assert store.stats.spooled > 0 and q.dropped == 0 and q.spilling == 0
    assert store.flush_spool()
    store.close()
    assert count(dsn) == n                        # every row once: none lost, none twice (the key is unique)
    assert store.stats.replayed == store.stats.spooled
