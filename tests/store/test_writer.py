"""The batch writer against a real PostgreSQL: values, idempotence, spool, bad rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from collector import records as R
from collector.store.spool import Spool
from collector.store.writer import BatchStore

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def one_of_each() -> list[R.Record]:
    return [
        R.IndexPrice(T0, "btc_usd", 91234.5, 91230.0),
        R.Candle(T0, "BTC-PERPETUAL", "BTC", 1.0, 2.0, 0.5, 1.5, 10.0, 900000.0),
        R.FutureCandle(T0, "BTC-27DEC26", "BTC", 1.0, 2.0, 0.5, 1.5, None, None),
        R.OptionBar(T0, "BTC-27DEC26-100000-C", "BTC", None, None, None, None, None, 0.01, 0.012, 0.011, 0.0111,
                    55.5, 54.0, 57.0, 91500.0, "BTC-27DEC26", 91234.5, 12.0, 300.0),
        R.Greeks(T0, "BTC-27DEC26-100000-C", "BTC", 0.35, 0.00001, 120.5, -30.2, 15.1, 55.5, None, 57.0, 0.0111,
                 91500.0, 91234.5, 300.0),
        R.Funding(T0, "BTC-PERPETUAL", "BTC", 0.00001, 0.00008, 91234.5, 91200.0),
        R.OptionQuote(T0, "ETH-27DEC26-3000-C", "ETH", 0.1, 5.0, None, None, 0.105, 60.0, 58.0, None, 3100.0,
                      "ETH-27DEC26", 3095.0, 1000.0, 0.52, 0.0012, 3.1, -4.2, 0.8, 0.102, 1234.0, 60.0),
        R.OptionTrade(T0, "ETH-27DEC26-3000-C", "ETH", 42, "ETH-2696055", 0.1, 5.0, "buy", 5.0, 2, 3095.0, 0.105,
                      60.1, None, None, None),
        R.BookDepth(T0, "BTC-PERPETUAL", "BTC", 123456789, 3, [91000.0, 90999.5, 90999.0], [10.0, 20.0, 30.0],
                    [91000.5, 91001.0], [40.0, 50.0], 91000.0, 91000.5, 91000.2, 91001.0),
        R.OptionBookDepth(T0, "ETH-27DEC26-3000-C", "ETH", None, 1, [], [], [0.11], [5.0]),
        R.DataGap(T0, "eth_option_trades", "ETH-27DEC26-3000-C", "ETH", T0 - timedelta(minutes=5), T0,
                  "trade_seq_jump", True, T0 + timedelta(seconds=3), 10, 41, 32, "backfilled over REST"),
    ]


@pytest.fixture
def store(dsn, tmp_path):
    s = BatchStore(dsn, Spool(tmp_path / "spool", 64 * 1024**2))
    yield s
    s.close()


def test_each_record_type_lands_with_its_values(store, conn):
    recs = one_of_each()
    res = store.write(recs)
    assert (res.inserted, res.duplicates, res.spooled) == (len(recs), 0, 0)
    for rec in recs:
        cols = R.columns_of(type(rec))
        got = conn.execute(f"SELECT {', '.join(cols)} FROM {R.table_of(rec)}").fetchall()
        assert got == [tuple(getattr(rec, c) for c in cols)], R.table_of(rec)
    # each currency's rows go to that currency's tables only
    assert conn.execute("SELECT count(*) FROM eth_option_trades").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM btc_option_trades").fetchone()[0] == 0


def test_same_batch_twice_and_overlapping_batches_give_one_copy(store, conn):
    quotes = [R.OptionQuote(T0 + timedelta(milliseconds=i), "BTC-27DEC26-100000-C", "BTC", 0.01, 1.0, 0.02, 1.0)
              for i in range(1000)]
    assert store.write(quotes).inserted == 1000
    again = store.write(quotes)
    assert (again.inserted, again.duplicates) == (0, 1000)
    overlap = store.write(quotes[500:] + [R.OptionQuote(T0 + timedelta(seconds=5), "BTC-27DEC26-100000-C", "BTC", 0.01, 1.0, 0.02, 1.0)])
    assert (overlap.inserted, overlap.duplicates) == (1, 500)
    # duplicates inside one batch are absorbed too
    dup = [quotes[0], quotes[0], R.OptionQuote(T0 - timedelta(seconds=1), "X-1", "BTC", None, None, None, None)] * 2
    assert store.write(dup).inserted == 1
    assert conn.execute("SELECT count(*) FROM btc_option_quotes").fetchone()[0] == 1002
    assert store.stats.inserted == 1002


def test_unreachable_database_spools_then_replays_in_order(dsn, tmp_path, conn):
    spool = Spool(tmp_path / "spool", 64 * 1024**2)
    dead = BatchStore("postgresql://nobody@127.0.0.1:1/nothing", spool, retry_initial_s=0.0)
    batches = [[R.IndexPrice(T0 + timedelta(seconds=b * 10 + i), "eth_usd", 3000.0 + i) for i in range(10)] for b in range(5)]
    for batch in batches:
        assert dead.write(batch).spooled == 10
    assert not dead.stats.db_up and len(spool) == 5
    segs = spool.segments()
    assert [s.seq for s in segs] == sorted(s.seq for s in segs)
    # a new process (same spool dir) against a live database replays everything, then empties the spool
    live = BatchStore(dsn, Spool(tmp_path / "spool", 64 * 1024**2))
    assert live.flush_spool()
    assert conn.execute("SELECT count(*) FROM index_prices").fetchone()[0] == 50
    assert list((tmp_path / "spool").glob("*.spool")) == []
    live.close()


def test_unreachable_database_is_retried_with_a_capped_doubling_backoff(tmp_path):
    now = [0.0]
    dead = BatchStore("postgresql://nobody@127.0.0.1:1/nothing", Spool(tmp_path / "spool", 64 * 1024**2),
                      retry_initial_s=1.0, retry_max_s=4.0, clock=lambda: now[0])
    tried = []
    for t in range(20):
        now[0] = float(t)
        errors = dead.stats.errors
        assert dead.write([R.IndexPrice(T0 + timedelta(seconds=t), "eth_usd", 3000.0)]).spooled == 1
        if dead.stats.errors > errors:
            tried.append(t)
    assert tried == [0, 1, 3, 7, 11, 15, 19]   # waits of 1, 2, 4, then 4 (the cap)


def test_bad_row_is_isolated_not_the_batch(store, conn, tmp_path):
    good = [R.OptionTrade(T0 + timedelta(seconds=i), "BTC-27DEC26-100000-C", "BTC", i, str(i), 0.01, 1.0, "sell")
            for i in range(100)]
    bad = R.OptionTrade(T0, "BTC-27DEC26-100000-C", "BTC", 1000, "bad\x00id", 0.01, 1.0, "buy")  # NUL: PostgreSQL refuses it
    res = store.write(good[:50] + [bad] + good[50:])
    assert (res.inserted, res.rejected) == (100, 1)
    assert conn.execute("SELECT count(*) FROM btc_option_trades").fetchone()[0] == 100
    kept = list((tmp_path / "spool" / "rejected").glob("*.spool"))
    assert len(kept) == 1  # the bad row is kept for a human, not dropped


def test_corrupt_spool_segment_is_moved_aside_not_deleted(dsn, tmp_path):
    spool = Spool(tmp_path / "spool", 64 * 1024**2)
    spool.append("index_prices", [R.IndexPrice(T0, "btc_usd", 1.0)])
    seg = spool.append("index_prices", [R.IndexPrice(T0 + timedelta(seconds=1), "btc_usd", 2.0)])
    seg.path.write_bytes(b"\x93garbage")
    store = BatchStore(dsn, Spool(tmp_path / "spool", 64 * 1024**2))
    store.flush_spool()
    assert len(list((tmp_path / "spool" / "corrupt").glob("*.spool"))) == 1   # moved aside, kept
    assert store.stats.replayed == 1 and store.stats.errors == 1
    store.close()


def test_spool_survives_a_half_written_segment(tmp_path):
    d = tmp_path / "spool"
    spool = Spool(d, 1024**2)
    spool.append("index_prices", [R.IndexPrice(T0, "btc_usd", 1.0)])
    (d / "000000000002.index_prices.tmp").write_bytes(b"half")
    again = Spool(d, 1024**2)
    assert len(again) == 1 and not list(d.glob("*.tmp"))
    assert again.append("index_prices", [R.IndexPrice(T0, "btc_usd", 1.0)]).seq == 2


def test_replay_stops_at_its_time_budget_and_the_rest_waits_in_order(dsn, tmp_path, conn):
    spool = Spool(tmp_path / "spool", 64 * 1024**2)
    for b in range(5):
        spool.append("index_prices", [R.IndexPrice(T0 + timedelta(seconds=b), "btc_usd", 90000.0 + b)])
    ticks = iter(range(1000))
    live = BatchStore(dsn, spool, clock=lambda: float(next(ticks)))   # each look at the clock: 1 s later
    assert live.replay(max_seconds=3) in (1, 2)
    left = len(spool)
    assert 3 <= left <= 4
    assert live.replay() == left                                        # no budget: the rest, in order
    assert conn.execute("SELECT count(*) FROM index_prices").fetchone()[0] == 5
    live.close()


def test_close_waits_for_the_flush_in_flight_and_cancelling_the_flusher_loses_nothing(dsn, tmp_path, conn):
    """A job stops with ``await queue.close()`` then cancels the flusher. A batch the flusher has taken
    but whose write has not started in its thread yet (a busy executor: a loaded machine) was lost."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from collector.store.queue import WriteQueue

    store = BatchStore(dsn, Spool(tmp_path / "spool", 64 * 1024**2))
    q = WriteQueue(store, batch_rows=100, max_age_s=0.01)
    release = threading.Event()
    rows = [R.OptionQuote(T0 + timedelta(milliseconds=i), "BTC-27DEC26-100000-C", "BTC", 0.01, 1.0, 0.02, 1.0)
            for i in range(500)]

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        blocker = loop.run_in_executor(None, release.wait)   # the only worker is busy
        flusher = asyncio.create_task(q.run())
        try:
            for r in rows:
                q.put(r)
            await asyncio.sleep(0.3)
            assert len(q) == 0                 # the flusher took the batch; its write waits for a worker
            closing = asyncio.create_task(q.close(timeout_s=30))
            await asyncio.sleep(0.3)
            assert not closing.done()          # close waits for the flush in flight
            flusher.cancel()
            await asyncio.sleep(0.1)
        finally:
            release.set()                      # (else the executor's shutdown waits for ever)
        await closing
        await blocker

    try:
        asyncio.run(main())
    finally:
        release.set()
        store.close()
    assert conn.execute("SELECT count(*) FROM btc_option_quotes").fetchone()[0] == 500
