"""Never lose a row silently (issue 14): the spool's last holes and a hostile host.

* a replayed segment whose refused rows cannot be set aside is kept, not deleted;
* a corrupt segment is set aside into ``corrupt/``, counted and recorded in ``data_gaps``, not retried;
* the spool's filesystem full (ENOSPC, a real 64 KiB tmpfs) or read-only (a real ``remount,ro``): one
  error line, counted, the rows handed back as overflow (the stream's queue records them in
  ``data_gaps``), nothing raised. Mounting needs root: without it those tests skip, saying so.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import psycopg
import pytest

from collector import records as R
from collector.store.queue import WriteQueue
from collector.store.spool import Spool
from collector.store.writer import BatchStore

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
DEAD = "postgresql://nobody@127.0.0.1:1/nothing"
INST = "BTC-27DEC26-100000-C"


def trade(i: int, trade_id: str | None = None) -> R.OptionTrade:
    return R.OptionTrade(T0 + timedelta(seconds=i), INST, "BTC", i, trade_id or str(i), 0.01, 1.0, "sell")


def bad_trade(i: int) -> R.OptionTrade:
    return trade(i, "bad\x00id")  # NUL: PostgreSQL refuses it


def quotes(start: int, n: int) -> list[R.OptionQuote]:
    return [R.OptionQuote(T0 + timedelta(milliseconds=start + i), INST, "BTC", 0.01, 1.0, 0.02, 1.0)
            for i in range(n)]


def gaps(dsn: str, cause: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT relation, currency, gap_start, gap_end, recoverable, backfilled_at, "
                            "missing_count, details FROM data_gaps WHERE cause = %s ORDER BY gap_start",
                            (cause,)).fetchall()


def logged(caplog, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


# -- rejected rows that cannot be set aside -----------------------------------------------------------


def test_a_replayed_segment_whose_refused_rows_cannot_be_set_aside_is_kept(dsn, conn, tmp_path, caplog):
    d = tmp_path / "spool"
    spool = Spool(d, 64 * 1024**2)
    seg = spool.append("option_trades", [trade(1), bad_trade(2), trade(3)])
    (d / "rejected").write_text("a file where the rejected/ directory should be")   # mkdir fails: ENOTDIR/EEXIST
    store = BatchStore(dsn, spool)
    with caplog.at_level(logging.ERROR):
        store.replay()                                   # never raises
    assert seg.path.exists()                             # the only copy of the refused row: kept
    assert store.stats.segments_kept == 1 and store.stats.rejected == 1 and store.stats.replayed == 0
    assert len(logged(caplog, "spool_segment_kept")) == 1
    assert conn.execute("SELECT count(*) FROM btc_option_trades").fetchone()[0] == 2   # the good rows are in
    store.replay()                                       # not retried by this process
    assert store.stats.rejected == 1 and len(logged(caplog, "spool_segment_kept")) == 1
    store.close()

    (d / "rejected").unlink()                            # the next start, with a place for the refused row
    again = BatchStore(dsn, Spool(d, 64 * 1024**2))
    again.replay()
    assert not seg.path.exists() and len(list((d / "rejected").glob("*.spool"))) == 1
    assert again.stats.rejected == 1 and again.stats.replayed == 3
    again.close()


def test_a_refused_row_of_a_live_write_that_cannot_be_kept_is_counted_and_in_data_gaps(dsn, conn, tmp_path, caplog):
    d = tmp_path / "spool"
    d.mkdir()
    (d / "rejected").write_text("in the way")
    store = BatchStore(dsn, Spool(d, 64 * 1024**2))
    with caplog.at_level(logging.ERROR):
        res = store.write([trade(1), bad_trade(2), trade(3)])
    assert (res.inserted, res.rejected) == (2, 1)
    assert store.stats.rows_lost == 1 and len(logged(caplog, "rows_lost")) == 1
    [(relation, currency, start, end, recoverable, backfilled, missing, details)] = gaps(dsn, "rejected_unkept")
    assert (relation, currency, start, end, recoverable, backfilled, missing) == \
        ("btc_option_trades", "BTC", T0 + timedelta(seconds=2), T0 + timedelta(seconds=2), False, None, 1)
    store.close()


# -- corrupt segments ---------------------------------------------------------------------------------


def test_a_corrupt_segment_is_set_aside_counted_and_recorded_once(dsn, tmp_path, caplog):
    d = tmp_path / "spool"
    spool = Spool(d, 64 * 1024**2)
    spool.append("index_prices", [R.IndexPrice(T0, "btc_usd", 1.0)])
    seg = spool.append("index_prices", [R.IndexPrice(T0 + timedelta(seconds=1), "btc_usd", 2.0)])
    seg.path.write_bytes(b"\x93garbage")                                   # undecodable, row count unknown
    # a segment whose bytes are msgpack but whose rows no longer fit the type (e.g. written by another
    # version): its rows can be counted and dated
    shape = msgspec.msgpack.encode([[T0 + timedelta(seconds=5), INST, "BTC", "not-an-int", "7", 0.01, 1.0, "buy"],
                                    [T0 + timedelta(seconds=9), INST, "BTC", "x", "8", 0.01, 1.0, "buy"]])
    (d / "000000000003.option_trades.spool").write_bytes(shape)
    store = BatchStore(dsn, Spool(d, 64 * 1024**2))
    with caplog.at_level(logging.ERROR):
        store.flush_spool()
    assert sorted(p.name for p in (d / "corrupt").iterdir()) == [
        "000000000002.index_prices.spool", "000000000003.option_trades.spool"]
    assert not list(d.glob("*.spool")) and not list(d.glob("*.bad"))
    assert store.stats.corrupt_segments == 2 and store.stats.replayed == 1
    by_relation = {g[0]: g for g in gaps(dsn, "spool_corrupt")}
    assert sorted(by_relation) == ["btc_option_trades", "index_prices"]
    _rel, cur, start, end, recoverable, _b, missing, _d = by_relation["btc_option_trades"]
    assert (cur, start, end, recoverable, missing) == ("BTC", T0 + timedelta(seconds=5), T0 + timedelta(seconds=9),
                                                       False, 2)
    _rel, cur, start, end, recoverable, _b, missing, details = by_relation["index_prices"]
    assert missing is None and start == end and not recoverable       # unknown rows: when it was written
    assert "000000000002.index_prices.spool" in details and "corrupt" in details
    assert len(logged(caplog, "spool_segment_corrupt")) == 2
    store.close()

    again = BatchStore(dsn, Spool(d, 64 * 1024**2))          # the next start does not try them again
    again.flush_spool()
    assert again.stats.corrupt_segments == 0 and again.stats.errors == 0
    assert len(gaps(dsn, "spool_corrupt")) == 2
    again.close()


# -- a hostile host -------------------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A real 64 KiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a full or read-only spool filesystem) needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> None:
    """Write zeros until the filesystem says ENOSPC."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)


def remount(mnt: Path, opts: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{opts}", str(mnt)], check=True)


def test_a_full_spool_filesystem_is_loud_once_counted_and_hands_the_rows_back(small_fs, caplog):
    spool = Spool(small_fs / "spool", 64 * 1024**2)       # its own limit is far above the filesystem's
    store = BatchStore(DEAD, spool, retry_initial_s=0.0)
    spooled = overflow = 0
    with caplog.at_level(logging.WARNING):
        for b in range(60):                               # ~2.5 KiB a batch: the tmpfs fills on the way
            res = store.write(quotes(b * 100, 100))
            spooled += res.spooled
            overflow += len(res.overflow)
    assert spooled + overflow == 6000 and spooled > 0 and overflow > 0
    assert len(logged(caplog, "spool_unwritable")) == 1     # one line, not one per batch
    assert "ENOSPC" in logged(caplog, "spool_unwritable")[0].__dict__["error"]
    assert spool.write_failures == overflow // 100 and store.stats.errors >= spool.write_failures
    assert not [r for r in caplog.records if r.exc_info]  # no traceback
    assert not list((small_fs / "spool").glob("*.tmp"))   # nothing half-written left behind
    assert sum(len(spool.load(s)) for s in spool.segments()) == spooled

    remount(small_fs, "size=1m")                          # space again: the spool takes rows and says so
    with caplog.at_level(logging.WARNING):
        assert store.write(quotes(10_000, 100)).spooled == 100
    assert len(logged(caplog, "spool_writable_again")) == 1


def test_a_read_only_spool_filesystem_is_loud_once_and_nothing_raises(small_fs, dsn, conn, caplog):
    d = small_fs / "spool"
    spool = Spool(d, 1024**2)
    seg = spool.append("option_trades", [trade(1), trade(2)])
    (d / "000000000009.option_trades.tmp").write_bytes(b"half")   # a crash's leftover
    remount(small_fs, "ro")
    with caplog.at_level(logging.WARNING):
        spool = Spool(d, 1024**2)                         # starting on a read-only spool works
        dead = BatchStore(DEAD, spool, retry_initial_s=0.0)
        res = [dead.write([trade(10 + i)]) for i in range(5)]
        assert [len(r.overflow) for r in res] == [1] * 5 and sum(r.spooled for r in res) == 0
        assert len(logged(caplog, "spool_unwritable")) == 1 and "EROFS" in logged(caplog, "spool_unwritable")[0].error

        live = BatchStore(dsn, spool)                     # the database is back: the segment's rows go in,
        assert live.replay() == 2                         # the segment cannot be deleted: not replayed again
        assert live.replay() == 0 and seg.path.exists() and spool.remove_failures == 1
    assert conn.execute("SELECT count(*) FROM btc_option_trades").fetchone()[0] == 2
    assert len(logged(caplog, "spool_segment_not_removed")) == 1
    assert not [r for r in caplog.records if r.exc_info]
    live.close()


def test_the_stream_queue_on_a_full_spool_records_what_it_dropped_in_data_gaps(small_fs, dsn, conn, caplog):
    """Overload (the queue sheds to the spool) on a full disk: every row is committed or counted as
    dropped, the drop has its data_gaps row, one spool error line, and put() never raises."""
    store = BatchStore(dsn, Spool(small_fs / "spool", 64 * 1024**2))
    fill(small_fs / "filler")                             # the disk is full before the stream starts
    store.replay()                                         # connected: the queue knows the database is up
    q = WriteQueue(store, batch_rows=100, max_age_s=0.05, max_rows=1000)
    rows = quotes(0, 5000)

    async def main():
        flusher = asyncio.create_task(q.run())
        for r in rows:                                    # no await: the flusher cannot keep up
            q.put(r)
        await q.close(timeout_s=30)
        flusher.cancel()
        # what the stream job does after closing the queue: the gaps of drops no later flush carried
        await asyncio.to_thread(store.write, q.take_gaps())

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    stored = conn.execute("SELECT count(*) FROM btc_option_quotes").fetchone()[0]
    assert q.dropped > 0 and stored + q.dropped == len(rows)
    [(rel, _c, start, end, recoverable, _b, missing, _d)] = gaps(dsn, "writer_overflow")
    assert rel == "btc_option_quotes" and missing == q.dropped and not recoverable and start <= end
    assert len(logged(caplog, "spool_unwritable")) == 1
    store.close()
