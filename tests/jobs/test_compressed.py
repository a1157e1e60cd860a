"""Jobs writing into chunks that are already compressed (TimescaleDB), against the simulator's truth:
a REST re-run that refills candles behind compressed rows, and the stream's restart backfill -- a batch
of stored and missed trades -- into a compressed chunk. On plain PostgreSQL the same runs go without
the compression step (the ``engine`` parameter)."""

from __future__ import annotations

import time

import psycopg
import pytest

from collector.jobs import rest
from collector.jobs.restjob import EXIT_OK

from tests.jobs import restsim
from tests.jobs.wsrun import JobThread, control, db_option_trades, settings_for, sim_option_trades, start_sim, wait_until


def compress_all(conn, table: str) -> int:
    """Compress every chunk of ``table`` (TimescaleDB); 0 on plain PostgreSQL."""
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").fetchone()[0]:
        return 0
    n = conn.execute(f"SELECT count(compress_chunk(c, if_not_compressed => true)) FROM show_chunks('{table}') c").fetchone()[0]
    assert n >= 1
    return n


def test_rest_rerun_refills_candles_behind_compressed_rows(rest_sim, dsn, conn, tmp_path, engine):
    sim = rest_sim(speed=3600, trade_rate=200, currencies=["BTC"], strikes=2)
    restsim.run_until(sim, restsim.START_MS + 2 * restsim.HOUR_MS)
    now = restsim.pause(sim)
    minute = now - now % restsim.MINUTE_MS
    settings = restsim.settings_for(sim, dsn, tmp_path / "spool", currencies="BTC")
    assert rest.run(settings).exit_code == EXIT_OK
    perp = "BTC-PERPETUAL"
    want = restsim.truth_candles(restsim.trades_of(sim, perp), minute)
    assert len(want) > 60
    compressed = compress_all(conn, "perpetuals_ohlcv") + compress_all(conn, "futures_ohlcv")
    assert (compressed > 0) == (engine == "timescaledb")
    # the newest 30 minutes go (a DELETE in compressed chunks), the next run fetches them back
    conn.execute("DELETE FROM perpetuals_ohlcv WHERE instrument = %s AND timestamp >= "
                 "(SELECT max(timestamp) - interval '29 minutes' FROM perpetuals_ohlcv WHERE instrument = %s)", (perp, perp))
    again = rest.run(settings)
    assert again.exit_code == EXIT_OK
    assert again.rows_inserted >= 30
    got = conn.execute("SELECT timestamp, open, high, low, close, volume, cost FROM perpetuals_ohlcv "
                       "WHERE instrument = %s ORDER BY timestamp", (perp,)).fetchall()
    assert [restsim.ms(g[0]) for g in got] == [w[0] for w in want]
    for g, w in zip(got, want):
        assert g[1:] == pytest.approx(w[1:], rel=1e-9, abs=1e-8)
    assert rest.run(settings).rows_inserted == 0


def test_restart_backfill_into_a_compressed_chunk_equals_the_truth(dsn, tmp_path, engine):
    sim = start_sim(strikes=3, rate=300, trade_rate=300, speed=0, trade_history=200_000)
    try:
        first = JobThread(settings_for(sim, dsn, tmp_path / "spool")).start()
        wait_until(lambda: first.job.ready, 30, what="READY")
        control(sim, "clock", {"speed": 1})
        wait_until(lambda: len(db_option_trades(dsn)) > 150, 30, what="trades")
        assert first.stop() == 0
        with psycopg.connect(dsn, autocommit=True) as conn:
            stored = conn.execute("SELECT count(*) FROM btc_option_trades").fetchone()[0]
            compressed = compress_all(conn, "btc_option_trades")
        assert (compressed > 0) == (engine == "timescaledb")
        time.sleep(2.0)          # trades go on while nothing collects
        control(sim, "clock", {"speed": 0})
        time.sleep(1.0)          # the last tick's trades are out
        second = JobThread(settings_for(sim, dsn, tmp_path / "spool")).start()
        truth = sim_option_trades(sim)
        assert len(truth) > stored
        wait_until(lambda: set(db_option_trades(dsn)) >= truth, 60, what="the restart backfill")
        assert second.stop() == 0
        got = db_option_trades(dsn)
        assert len(got) == len(set(got)) and set(got) == sim_option_trades(sim) == truth
    finally:
        sim.stop()
