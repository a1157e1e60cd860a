"""Never lose a row silently (issue 14), the stream's side: a time backfill cut short by its page limit,
a wall-clock step (NTP) around a disconnect or a restart, and a shutdown step that fails.

The backfill tests run :class:`Continuity` against the simulator's REST API (real pages, real paging);
the wall clock is what the session reports (``ConnectInfo``/``DisconnectInfo``), the monotonic clock is
injected: a real clock step cannot be made in a test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from datetime import datetime, timezone

import psycopg
import pytest

from collector.deribit.instruments import is_option
from collector.deribit.rest import RestClient
from collector.deribit.session import ConnectInfo, DisconnectInfo
from collector.jobs.archive import Archive
from collector.jobs.rest import traded_options
from collector.jobs.ws_continuity import Continuity
from collector.records import DataGap, OptionTrade, Record
from tests.jobs import wsrun
from tests.jobs.restsim import START_MS, control, pause, run_until

UTC = timezone.utc


def ms(t: int) -> datetime:
    return datetime.fromtimestamp(t / 1000, UTC)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def continuity(sim, out: list[Record], **kw) -> Continuity:
    return Continuity("BTC", out.append, lambda: RestClient(sim.urls["rest"]), spawn=lambda coro, name: coro.close(),
                      resubscribe=lambda ch: asyncio.sleep(0), advance_trades=lambda inst, seqs: None, **kw)


def work(c: Continuity, out: list[Record], gaps: int, timeout: float = 30.0) -> list[DataGap]:
    """Run the backfill worker until ``gaps`` trade data_gaps rows are out; those rows."""

    async def main():
        task = asyncio.create_task(c.run())
        deadline = time.monotonic() + timeout
        while len(trade_gaps(out)) < gaps:
            assert time.monotonic() < deadline, f"no {gaps} trade gap rows: {out[-5:]}"
            await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(main())
    return trade_gaps(out)


def trade_gaps(out: list[Record]) -> list[DataGap]:
    return sorted((r for r in out if isinstance(r, DataGap) and r.relation == "btc_option_trades"),
                  key=lambda g: g.gap_start)


def sim_option_trades(sim, start: datetime, end: datetime) -> set[str]:
    """The trade ids of the simulator's option trades with ``start <= timestamp <= end``."""
    got = control(sim, "trades", currency="BTC")
    assert got["complete"]
    return {t["trade_id"] for t in got["trades"] if is_option(t["instrument_name"]) and start <= ms(t["timestamp"]) <= end}


@pytest.fixture
def busy_sim(rest_sim):
    """A paused BTC simulator with a few thousand option trades since START_MS."""
    sim = rest_sim(speed=600, trade_rate=5000, currencies=["BTC"], strikes=2)
    run_until(sim, START_MS + 120_000)
    deadline = time.monotonic() + 30
    while sum(is_option(t["instrument_name"]) for t in control(sim, "trades", currency="BTC")["trades"]) < 2500:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return sim, pause(sim)


def test_a_time_backfill_stopped_by_its_page_limit_is_recorded_as_incomplete(busy_sim, caplog):
    sim, now = busy_sim
    start, up = ms(START_MS), ms(now)
    out: list[Record] = []
    c = continuity(sim, out, backfill_max_pages=2)        # 2 pages of 1000: less than the period holds
    c.set_baselines(start, None)
    c.connected(ConnectInfo(1, now / 1000, now / 1000, 10, ()))
    with caplog.at_level(logging.WARNING):
        done, rest = work(c, out, gaps=2)
    trades = [r for r in out if isinstance(r, OptionTrade)]
    assert 1000 < len(trades) <= 2000 < len(sim_option_trades(sim, start, up))
    # what was fetched is backfilled, up to where it got
    assert (done.gap_start, done.backfilled_at is not None, done.missing_count) == (start, True, len(trades))
    assert done.gap_end == rest.gap_start
    assert max(t.timestamp for t in trades) <= rest.gap_start   # complete before it, the rest from it on
    # the rest is not: backfilled_at NULL, recoverable, and it says so
    assert (rest.gap_end, rest.backfilled_at, rest.recoverable, rest.cause) == (up, None, True, "restart")
    assert rest.details.startswith("incomplete")
    assert [r for r in caplog.records if r.getMessage() == "backfill_incomplete"]


def test_a_restart_with_the_local_clock_behind_the_stored_rows_fetches_up_to_the_exchanges_time(busy_sim, caplog):
    sim, now = busy_sim
    stored = ms(now - 60_000)                             # the newest stored trade: a minute before the exchange's now
    out: list[Record] = []
    c = continuity(sim, out)
    c.set_baselines(stored, None)
    behind = (now - 3_600_000) / 1000                     # the local clock an hour behind (stepped by NTP later)
    c.connected(ConnectInfo(1, behind, behind, 10, ()))
    with caplog.at_level(logging.WARNING):
        [gap] = work(c, out, gaps=1)
    assert gap.gap_start == stored and gap.gap_end >= ms(now) and gap.backfilled_at is not None
    fetched = {t.trade_id for t in out if isinstance(t, OptionTrade)}
    assert fetched and fetched == sim_option_trades(sim, stored, gap.gap_end)
    assert [r for r in caplog.records if r.getMessage() == "clock_behind_stored_rows"]


@pytest.mark.parametrize("step_s", [3600.0, -3600.0, -2.0], ids=["forward_1h", "back_1h", "back_2s"])
def test_a_wall_clock_step_while_disconnected_makes_no_false_or_inverted_gap(busy_sim, step_s):
    sim, now = busy_sim
    mono = Clock()
    out: list[Record] = []
    c = continuity(sim, out, clock=mono)
    last_frame = (now - 20_000) / 1000                    # wall clock, before the step
    mono.t += 0.5
    c.disconnected(DisconnectInfo(1, "connection closed", last_frame, last_frame + 0.5))
    mono.t += 5.0                                         # 5.5 s dark in truth ...
    up = last_frame + 5.5 + step_s                        # ... and the wall clock stepped meanwhile
    c.connected(ConnectInfo(2, up - 0.2, up, 10, ()))
    holes = [r for r in out if isinstance(r, DataGap)]
    assert holes and {(g.gap_end - g.gap_start).total_seconds() for g in holes} == {5.5}
    assert {g.gap_end for g in holes} == {datetime.fromtimestamp(up, UTC)}
    [trades_gap] = work(c, out, gaps=1)                   # the trade backfill's window: as long, a second each side
    assert (trades_gap.gap_end - trades_gap.gap_start).total_seconds() == 7.5


def test_the_rest_jobs_option_trades_cut_by_the_page_limit_leave_a_data_gaps_row(rest_sim):
    sim = rest_sim(speed=60, trade_rate=5000, currencies=["BTC"], strikes=2)
    run_until(sim, START_MS + 70_000)
    pause(sim)
    bar, end = START_MS, START_MS + 59_999
    in_minute = [t for t in control(sim, "trades", currency="BTC")["trades"]
                 if is_option(t["instrument_name"]) and bar <= t["timestamp"] <= end]
    assert len(in_minute) > 1000                           # more than one page
    client = RestClient(sim.urls["rest"])
    got: list[Record] = []
    assert traded_options(client, "BTC", bar, got.extend) == {t["instrument_name"] for t in in_minute} and not got
    traded_options(client, "BTC", bar, got.extend, max_pages=1)
    [gap] = got
    assert isinstance(gap, DataGap) and (gap.relation, gap.currency, gap.cause, gap.recoverable) == (
        "options_ohlcv", "BTC", "page_limit", False)
    assert ms(bar) < gap.gap_start <= ms(end) == gap.gap_end and gap.details.startswith("incomplete")


# -- a shutdown step that fails --------------------------------------------------------------------


def test_a_failing_shutdown_step_is_logged_and_the_queued_rows_still_reach_the_database(dsn, tmp_path, caplog):
    """The archive's last flush fails (its filesystem went read-only): one error line naming the step,
    and the queue is still closed: the rows in memory are written (here: every row, nothing flushed
    before the stop)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only filesystem for the archive needs root (mount -o remount,ro)")
    sim = wsrun.start_sim(rate=200.0)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        # nothing is flushed before the stop: every row is in memory when the shutdown begins
        settings = wsrun.settings_for(sim, dsn, tmp_path / "spool", COLLECTOR_BATCH_MAX_AGE="3600",
                                      COLLECTOR_BATCH_ROWS="1000000", COLLECTOR_QUEUE_MAX_ROWS="2000000")
        job = wsrun.JobThread(settings).start()
        wsrun.wait_until(lambda: job.job.counters()["quotes"] > 50, what="quotes in the queue")
        archive = Archive(mnt, "BTC")
        archive.add(b'{"a":1}', time.time())              # something to flush at the stop
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        job.job.archive = archive
        with caplog.at_level(logging.WARNING):
            rc = job.stop()
        quotes = job.job.counters()["quotes"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        sim.stop()
    failed = [r for r in caplog.records if r.getMessage() == "shutdown_step_failed"]
    assert len(failed) == 1 and failed[0].step == "archive" and "Read-only" in failed[0].error
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM btc_option_quotes").fetchone()[0]
    assert stored == quotes and rc == 0


def test_the_stream_on_a_full_spool_filesystem_with_the_database_away_stays_up_and_counts_the_drops(tmp_path, caplog):
    """The database is unreachable and the spool's filesystem full: the stream goes on, one spool error
    line, every row it cannot keep counted as dropped, and SIGTERM still ends it with 0."""
    if os.geteuid() != 0:
        pytest.skip("a full filesystem for the spool needs root (a 64 KiB tmpfs)")
    sim = wsrun.start_sim(rate=200.0)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        settings = wsrun.settings_for(sim, "postgresql://nobody@127.0.0.1:1/nothing", mnt / "spool",
                                      COLLECTOR_BATCH_ROWS="200")
        with caplog.at_level(logging.WARNING):
            job = wsrun.JobThread(settings).start()
            wsrun.wait_until(lambda: job.job.counters()["dropped"] > 1000, timeout=60, what="rows dropped")
            c = job.job.counters()
            assert job.alive and c["spool_write_failures"] > 0 and c["spooled"] > 0
            rc = job.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        sim.stop()
    assert rc == 0
    assert len([r for r in caplog.records if r.getMessage() == "spool_unwritable"]) == 1
    assert not [r for r in caplog.records if r.getMessage() in ("flush_failed", "task_failed")]
