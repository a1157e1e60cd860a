"""`collector ws` end to end: the simulator's faults along one run, then the database against the truth.

The run happens once per engine (a module fixture that records what happened, timeouts included); each
test below checks one scenario, so they fail one at a time.

Along the way: 2 dropped connections, a skipped book change, 50 skipped trades on one option, a malformed
frame, the database stopped for 20 s (for real: pg_ctl stop/start), an expiry and a new listing. Afterwards
the option trades in the database equal the simulator's own record exactly, every gap has its data_gaps
row, new instruments are recorded, expired ones are no longer subscribed, and the job never exited.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from collector.deribit import protocol

from tests.jobs.wsrun import (
    JobThread, control, db_option_trades, rest, rows, settings_for, sim_option_trades, start_sim, wait_until,
)
from tests.pgtools import engine_server, migrated_database, server_pair

pg_ws_plain, pg_ws_tsdb = server_pair()
pg_ws = engine_server("pg_ws_plain", "pg_ws_tsdb")


@pytest.fixture(scope="module")
def run(pg_ws, tmp_path_factory):
    """The whole run: every fault, then the market frozen and the job stopped. Returns what was seen."""
    dsn = migrated_database(pg_ws)
    r = SimpleNamespace(dsn=dsn, timeouts=[], alive_at_end=False, rc=None)

    def step(cond, timeout, what):
        try:
            wait_until(cond, timeout, what=what)
        except AssertionError:
            r.timeouts.append(what)

    sim = start_sim(strikes=3, rate=400, trade_rate=300, speed=0, trade_history=200_000)
    job = JobThread(settings_for(sim, dsn, tmp_path_factory.mktemp("spool"))).start()
    try:
        wait_until(lambda: job.job.ready, 30, what="READY")
        control(sim, "clock", {"speed": 1})          # the market moves only once everything is subscribed
        r.options = options = sorted(n for n in job.job.followed)
        r.victim = victim = options[len(options) // 2]
        step(lambda: rows(dsn, "SELECT count(*) FROM btc_option_trades")[0][0] > 50, 30, "trades")
        # a jump needs a baseline: the victim's first trade is seen on the stream before its trades are
        # skipped (skipped trades before an instrument's first seen one cannot be told from the stream:
        # the first seq seen is the baseline -- see the closing note of this change)
        step(lambda: rows(dsn, "SELECT count(*) FROM btc_option_trades WHERE instrument = %s", victim)[0][0] > 0,
             60, "a first trade of the victim")

        control(sim, "fault", {"kind": "skip_book_change", "instrument": "BTC-PERPETUAL"})
        control(sim, "fault", {"kind": "skip_trades", "instrument": victim, "count": 50})
        control(sim, "fault", {"kind": "malformed_frame"})
        step(lambda: job.job.bad_frames >= 1, 10, "the malformed frame to be counted")
        step(lambda: job.job.pipeline.counts["book_breaks"] >= 1, 10, "the book chain break")

        control(sim, "fault", {"kind": "drop_connections"})
        step(lambda: job.job.session.connects >= 2 and job.job.session.connected, 20, "reconnect 1")

        pg_ws.stop()                                  # the database goes away for 20 s, for real
        time.sleep(20)
        r.spooled_while_down = job.job.store.spool.bytes
        pg_ws.start()

        control(sim, "fault", {"kind": "drop_connections"})
        step(lambda: job.job.session.connects >= 3 and job.job.session.connected, 20, "reconnect 2")

        r.expired = expired = next(n for n in options if n != victim)
        control(sim, "fault", {"kind": "expire", "instrument": expired})
        before = {i["instrument_name"] for i in rest(sim, "get_instruments", currency="BTC", kind="option")}
        control(sim, "fault", {"kind": "list", "currency": "BTC"})
        after = {i["instrument_name"] for i in rest(sim, "get_instruments", currency="BTC", kind="option")}
        r.listed = listed = after - before

        # the 50 suppressed trades are noticed when the victim trades again, then backfilled
        step(lambda: control(sim, "stats")["notifications"]["suppressed"].get(f"trades:{victim}", 0) >= 50,
             60, "50 suppressed trades")
        step(lambda: rows(dsn, "SELECT count(*) FROM data_gaps WHERE cause = 'trade_seq_jump' "
                               "AND instrument = %s AND backfilled_at IS NOT NULL", victim)[0][0] >= 1,
             60, "the victim's gap to be backfilled")
        step(lambda: rows(dsn, "SELECT count(DISTINCT instrument) FROM btc_option_quotes "
                               "WHERE instrument = ANY(%s)", sorted(listed))[0][0] > 0,
             30, "quotes of a newly listed option")

        control(sim, "clock", {"speed": 0})           # freeze the market, let the last frames arrive
        time.sleep(1.5)
        step(lambda: job.job.store.spool.bytes == 0, 30, "the spool to drain")
        r.alive_at_end = job.alive
        session = job.job.session
        r.subscribed, r.wanted, r.followed = set(session.subscribed), set(session.wanted), set(job.job.followed)
        r.rc = job.stop()
        job = None
        r.truth = sim_option_trades(sim)
        r.stored = db_option_trades(dsn)
        r.gaps = rows(dsn, "SELECT relation, instrument, cause, recoverable, backfilled_at IS NOT NULL, "
                           "missing_count, gap_start <= gap_end FROM data_gaps")
        yield r
    finally:
        if job is not None:
            job.stop()
        sim.stop()


def test_every_step_of_the_run_happened_and_the_job_never_exited(run):
    assert run.timeouts == []
    assert len(run.options) > 20 and run.listed, "too few options followed, or the simulator listed nothing"
    assert run.alive_at_end and run.rc == 0


def test_the_option_trades_equal_the_simulators_exactly(run):
    assert len(run.stored) == len(set(run.stored)), "a trade is stored twice"
    missing, extra = run.truth - set(run.stored), set(run.stored) - run.truth
    assert not missing and not extra, (
        f"missing {len(missing)} (e.g. {sorted(missing)[:5]}), extra {len(extra)}; victim {run.victim}; gaps: "
        + repr(rows(run.dsn, "SELECT instrument, cause, from_seq, to_seq, details FROM data_gaps")))
    ids = rows(run.dsn, "SELECT count(*), count(DISTINCT trade_id) FROM btc_option_trades")[0]
    assert ids[0] == ids[1]


def test_each_disconnect_has_its_gaps_and_its_trades_backfilled(run):
    disconnects = [g for g in run.gaps if g[2] == "disconnect"]
    assert len([g for g in disconnects if g[0] == "btc_option_quotes" and not g[3]]) == 2
    assert len([g for g in disconnects if g[0] == "index_prices" and not g[3]]) == 2
    assert len([g for g in disconnects if g[0] == "btc_option_trades" and g[3] and g[4]]) == 2
    assert all(g[6] for g in run.gaps)


def test_skipped_trades_are_found_by_seq_fetched_and_noted(run):
    # (a part may have come with a disconnect's backfill, so the count is not exactly 50)
    jumps = [g for g in run.gaps if g[1] == run.victim and g[2] == "trade_seq_jump"]
    assert jumps and all(g[0] == "btc_option_trades" and g[3] and g[4] for g in jumps)
    assert sum(g[5] for g in jumps) > 0
    spans = sorted(rows(run.dsn, "SELECT from_seq, to_seq FROM data_gaps WHERE cause = 'trade_seq_jump' "
                                 "AND instrument = %s", run.victim))
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), f"overlapping seq gaps {spans}"


def test_a_book_break_resubscribes_that_book_only(run):
    assert any(g[0] == "perpetuals_orderbook_depth" and g[1] == "BTC-PERPETUAL" and g[2] == "book_change_gap"
               for g in run.gaps)
    assert rows(run.dsn, "SELECT count(*) FROM perpetuals_orderbook_depth")[0][0] >= 2   # a fresh snapshot


def test_the_database_outage_spooled_and_everything_drained(run):
    assert run.spooled_while_down > 0, "rows were not spooled while the database was down"
    assert rows(run.dsn, "SELECT state, rows_dropped FROM collector_status WHERE job = 'ws:BTC'") == [("stopped", 0)]


def test_an_expiry_is_dropped_and_a_listing_followed(run):
    ch = protocol.ticker_channel(run.expired)
    assert ch not in run.subscribed and ch not in run.wanted and run.expired not in run.followed
    assert any(protocol.ticker_channel(n) in run.subscribed for n in run.listed)
