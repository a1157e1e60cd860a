"""`collector ws` records the perpetual's ticks (both engines): perpetuals_quotes on every change of its book
top, perpetuals_trades contiguous by trade_seq -- skipped trades are found by seq and backfilled, and a
restart backfills what it missed from the stored baseline."""

from __future__ import annotations

from tests.jobs.wsrun import JobThread, control, rows, settings_for, start_sim, wait_until

PERP = "BTC-PERPETUAL"


def sim_perp_seqs(sim) -> list[int]:
    got = control(sim, "trades", instrument=PERP)
    assert got["complete"], "the simulator's trade history was truncated: raise trade_history"
    return [t["trade_seq"] for t in got["trades"]]


def db_perp_seqs(dsn: str) -> list[int]:
    return [r[0] for r in rows(dsn, "SELECT trade_seq FROM perpetuals_trades WHERE instrument = %s ORDER BY 1", PERP)]


def test_the_perpetuals_quotes_and_trades_are_recorded_continuous_and_backfilled(dsn, tmp_path):
    sim = start_sim(strikes=2, rate=300, trade_rate=150, speed=0, trade_history=200_000)
    settings = settings_for(sim, dsn, tmp_path / "spool")
    job = JobThread(settings).start()
    try:
        wait_until(lambda: job.job.ready, 30, what="READY")
        control(sim, "clock", {"speed": 1})
        wait_until(lambda: len(db_perp_seqs(dsn)) > 20, 30, what="perpetual trades")
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM perpetuals_quotes")[0][0] > 5, 30, what="perpetual quotes")

        control(sim, "fault", {"kind": "skip_trades", "instrument": PERP, "count": 30})
        wait_until(lambda: control(sim, "stats")["notifications"]["suppressed"].get(f"trades:{PERP}", 0) >= 30,
                   30, what="30 suppressed perpetual trades")
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM data_gaps WHERE relation = 'perpetuals_trades' AND "
                                     "instrument = %s AND cause = 'trade_seq_jump' AND backfilled_at IS NOT NULL",
                                PERP)[0][0] >= 1, 30, what="the perpetual's gap to be backfilled")

        control(sim, "clock", {"speed": 0})           # freeze: the last frames arrive, then nothing
        wait_until(lambda: db_perp_seqs(dsn) == sim_perp_seqs(sim), 30, what="every perpetual trade stored")
        truth = sim_perp_seqs(sim)
        assert job.stop() == 0
        job = None

        stored = db_perp_seqs(dsn)
        assert stored == list(range(stored[0], stored[-1] + 1)), "the perpetual's trade_seq has a hole"
        check_perpetual_rows(dsn)
        gap = rows(dsn, "SELECT from_seq, to_seq, missing_count, gap_start <= gap_end FROM data_gaps "
                        "WHERE relation = 'perpetuals_trades' AND cause = 'trade_seq_jump'")
        assert sum(g[2] for g in gap) >= 30 and all(g[3] for g in gap)
        assert rows(dsn, "SELECT count(*) FROM btc_option_trades WHERE instrument = %s", PERP) == [(0,)]
        sent = {(t["trade_seq"], t["trade_id"], t["direction"], t.get("liquidation"))
                for t in control(sim, "trades", instrument=PERP)["trades"]}
        assert set(rows(dsn, "SELECT trade_seq, trade_id, direction, liquidation FROM perpetuals_trades")) == sent

        # a restart: the trades made while no job ran come back from the stored trade_seq baseline
        control(sim, "clock", {"speed": 1})
        wait_until(lambda: len(sim_perp_seqs(sim)) > len(truth) + 10, 30, what="perpetual trades while stopped")
        job = JobThread(settings).start()
        wait_until(lambda: job.job.ready, 30, what="READY after the restart")
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM data_gaps WHERE relation = 'perpetuals_quotes' "
                                     "AND cause = 'restart'")[0][0] == 1, 30, what="the quotes' restart gap")
        control(sim, "clock", {"speed": 0})
        wait_until(lambda: db_perp_seqs(dsn) == sim_perp_seqs(sim), 30, what="the restart's perpetual trades backfilled")
        assert rows(dsn, "SELECT count(*) FROM data_gaps WHERE relation = 'perpetuals_trades' AND cause = "
                         "'trade_seq_jump' AND from_seq = %s AND backfilled_at IS NOT NULL", truth[-1] + 1) == [(1,)]
        assert job.stop() == 0
        job = None
    finally:
        if job is not None:
            job.stop()
        sim.stop()


def check_perpetual_rows(dsn: str) -> None:
    """perpetuals_quotes: one row per change of the book top (no two rows alike in a row), values set."""
    quotes = rows(dsn, "SELECT best_bid_price, best_bid_amount, best_ask_price, best_ask_amount, mark_price, "
                       "index_price, funding_rate, funding_8h, open_interest FROM perpetuals_quotes "
                       "WHERE instrument = %s ORDER BY timestamp", PERP)
    assert len(quotes) > 5
    tops = [q[:4] for q in quotes]
    assert all(a != b for a, b in zip(tops, tops[1:])), "an unchanged book top was stored again"
    assert all(v is not None for q in quotes for v in q[4:]), "mark, index, funding or open interest missing"
    trades = rows(dsn, "SELECT count(*), count(DISTINCT trade_id), count(mark_price), count(index_price) "
                       "FROM perpetuals_trades")[0]
    assert trades[0] == trades[1] == trades[2] == trades[3] > 0
