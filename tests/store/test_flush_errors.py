"""A flush that fails for a reason other than the connection: a permanent cause (the schema, the SQL)
stops the writer once, loudly, with every row kept in the spool; a transient one is retried with
backoff, logged once and counted. Real database faults under a running queue."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import psycopg

from collector import records as R
from collector.store.queue import WriteQueue, WriterFailed
from collector.store.spool import Spool
from collector.store.writer import BatchStore

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
N = 3000
WRITER = "deribit-collector@%"


def index(i: int) -> R.IndexPrice:
    return R.IndexPrice(T0 + timedelta(seconds=i), "btc_usd", 90000.0 + i, None)


def admin(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, options="-c default_transaction_read_only=off")


def rows_in_db(dsn: str) -> int:
    with admin(dsn) as conn:
        return conn.execute("SELECT count(*) FROM index_prices").fetchall()[0][0]


def rows_in_spool(spool: Spool) -> int:
    return sum(len(spool.load(s)) for s in spool.segments())


def terminate_writer(dsn: str) -> int:
    with admin(dsn) as conn:
        return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                                "current_database() AND application_name LIKE %s", (WRITER,)).fetchall())


def records_named(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == name]


async def stream(q: WriteQueue, start: int, stop: int) -> None:
    for i in range(start, stop):
        q.put(index(i))
        if i % 100 == 99:
            await asyncio.sleep(0.005)


async def committed(dsn: str, n: int) -> None:
    while await asyncio.to_thread(rows_in_db, dsn) < n:
        await asyncio.sleep(0.05)


def drop_column(dsn: str) -> None:
    with admin(dsn) as conn:
        conn.execute("ALTER TABLE index_prices DROP COLUMN estimated_delivery_price")


def add_column_back(dsn: str) -> None:
    with admin(dsn) as conn:
        conn.execute("ALTER TABLE index_prices ADD COLUMN estimated_delivery_price double precision")


def new_queue(dsn: str, tmp_path) -> tuple[Spool, BatchStore, WriteQueue]:
    spool = Spool(tmp_path / "spool", 256 * 1024**2)
    store = BatchStore(dsn, spool, retry_initial_s=0.05, retry_max_s=0.2)
    return spool, store, WriteQueue(store, batch_rows=100, max_age_s=0.02, max_rows=100_000,
                                    retry_initial_s=0.05, retry_max_s=0.4)


def stops_with_every_row_kept(dsn: str, tmp_path, caplog, fault) -> WriterFailed:
    caplog.set_level(logging.WARNING)
    spool, store, q = new_queue(dsn, tmp_path)

    async def main() -> BaseException:
        flusher = asyncio.create_task(q.run())
        await stream(q, 0, N // 3)
        await asyncio.wait_for(committed(dsn, N // 3), 30)
        await asyncio.to_thread(fault)
        await stream(q, N // 3, N)
        done, _ = await asyncio.wait({flusher}, timeout=60)
        assert done, "the writer went on retrying a permanent failure"
        await q.close(timeout_s=10)
        err = flusher.exception()
        assert err is not None
        return err

    err = asyncio.run(main())
    assert isinstance(err, WriterFailed)
    assert len(records_named(caplog, "writer_failed")) == 1      # one clear error ...
    assert not records_named(caplog, "flush_failed")             # ... and no retry tracebacks
    assert not records_named(caplog, "row_rejected")             # the rows are not at fault
    assert q.state() == "failed" and len(q) == 0
    in_db = rows_in_db(dsn)
    assert in_db + rows_in_spool(spool) >= N                     # every row committed or in the spool
    store.close()
    add_column_back(dsn)                                          # the database fixed: the spool replays
    again = BatchStore(dsn, Spool(tmp_path / "spool", 256 * 1024**2))
    assert again.flush_spool()
    again.close()
    assert rows_in_db(dsn) == N                                  # all of them, once
    return err


def test_a_column_dropped_under_the_running_writer_stops_it_with_every_row_kept(dsn, tmp_path, caplog):
    err = stops_with_every_row_kept(dsn, tmp_path, caplog, lambda: drop_column(dsn))
    assert isinstance(err.__cause__, psycopg.ProgrammingError)


def test_a_schema_mismatch_found_on_reconnect_stops_the_writer_with_every_row_kept(dsn, tmp_path, caplog):
    def fault() -> None:
        drop_column(dsn)
        assert terminate_writer(dsn) == 1   # the writer reconnects and checks the tables again

    err = stops_with_every_row_kept(dsn, tmp_path, caplog, fault)
    assert type(err.__cause__).__name__ == "SchemaMismatch"


def test_a_transient_failure_is_retried_with_backoff_logged_once_and_counted(dsn, tmp_path, caplog):
    """The database turns read-only (a standby after a failover) and the writer's connection drops:
    reconnecting fails (no staging table on a read-only server) until the database is writable again."""
    caplog.set_level(logging.WARNING)
    spool, store, q = new_queue(dsn, tmp_path)
    with admin(dsn) as conn:
        name = conn.execute("SELECT current_database()").fetchall()[0][0]

    def read_only(on: bool) -> None:
        with admin(dsn) as conn:
            change = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
            conn.execute(f'ALTER DATABASE "{name}" {change}')

    async def main() -> None:
        flusher = asyncio.create_task(q.run())
        await stream(q, 0, N // 3)
        await asyncio.wait_for(committed(dsn, N // 3), 30)
        await asyncio.to_thread(read_only, True)
        try:
            await asyncio.to_thread(terminate_writer, dsn)
            await stream(q, N // 3, 2 * N // 3)
            while q.flush_errors < 5:           # five failed attempts in a row
                await asyncio.sleep(0.02)
                assert not flusher.done(), flusher
        finally:
            await asyncio.to_thread(read_only, False)
        await stream(q, 2 * N // 3, N)
        await asyncio.wait_for(committed(dsn, N), 60)
        assert not flusher.done()               # the writer never stopped
        await q.close(timeout_s=10)
        flusher.cancel()

    asyncio.run(main())
    failed = records_named(caplog, "flush_failed")
    assert len(failed) == 1 and failed[0].exc_info is not None   # one traceback for the whole outage
    assert getattr(failed[0], "error_type") == "ReadOnlySqlTransaction"
    recovered = records_named(caplog, "flush_recovered")
    assert len(recovered) == 1 and getattr(recovered[0], "failures") >= 5     # the count, when it cleared
    assert not records_named(caplog, "writer_failed")
    assert store.stats.errors >= q.flush_errors >= 5              # counted (collector_status.errors)
    store.close()
    assert rows_in_db(dsn) + rows_in_spool(spool) == N and q.dropped == 0
