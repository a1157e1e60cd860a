"""`collector rest` against the simulator and a real PostgreSQL: catch-up, idempotence, the option
chain's minute row, index prices, rate limits, injected errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from collector.jobs import rest
from collector.jobs.restjob import EXIT_FAILED, EXIT_OK
from tests.jobs.restsim import (
    FAST, HOUR_MS, MINUTE_MS, START_MS, control, live, ms, pause, refused_10028, run_until, settings_for,
    trades_of, truth_candles,
)

CANDLE_COLS = "timestamp, open, high, low, close, volume, cost"


def stored_candles(conn, table: str, name: str) -> list[tuple]:
    rows = conn.execute(f"SELECT {CANDLE_COLS} FROM {table} WHERE instrument = %s ORDER BY timestamp",
                        (name,)).fetchall()
    return [(ms(r[0]), *r[1:]) for r in rows]


def test_three_hours_off_then_one_run_fills_every_candle_and_a_second_adds_nothing(rest_sim, dsn, conn, tmp_path):
    # the whole default universe of both currencies; 3 simulated hours pass with nothing collecting
    sim = rest_sim(speed=3600, trade_rate=200)
    run_until(sim, START_MS + 3 * HOUR_MS)
    now = pause(sim)
    minute = now - now % MINUTE_MS
    settings = settings_for(sim, dsn, tmp_path / "spool")

    first = rest.run(settings)
    assert first.exit_code == EXIT_OK, first.failures
    futures = live(sim, "future")
    assert len(futures) == 18
    filled = 0
    for inst in futures:
        table = "perpetuals_ohlcv" if inst["perp"] else "futures_ohlcv"
        want = truth_candles(trades_of(sim, inst["name"]), minute)
        got = stored_candles(conn, table, inst["name"])
        assert [g[0] for g in got] == [w[0] for w in want], inst["name"]
        for g, w in zip(got, want):
            assert g[1:] == pytest.approx(w[1:], rel=1e-9, abs=1e-8), (inst["name"], g[0])
        filled += len(want)
    assert filled > 18 * 60  # hours of minutes, not a handful
    perp_minutes = conn.execute("SELECT count(DISTINCT timestamp) FROM perpetuals_ohlcv").fetchone()[0]
    assert perp_minutes >= 170  # every minute of the 3 h since the perpetuals' first trades
    # the catch-up took more requests than the burst, yet the limiter kept the simulator happy
    assert first.requests > 100
    assert refused_10028(sim) == 0 and first.retries == 0

    second = rest.run(settings)
    assert second.exit_code == EXIT_OK
    assert second.rows_inserted == 0 and second.rows_spooled == 0
    assert refused_10028(sim) == 0


def test_option_chain_row_per_live_option_and_index(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(speed=600, trade_rate=400, strikes=2)
    run_until(sim, START_MS + 20 * MINUTE_MS)
    now = pause(sim)
    bar = now - now % MINUTE_MS - MINUTE_MS
    settings = settings_for(sim, dsn, tmp_path / "spool", ohlcv_catchup_horizon_s="1h")
    out = rest.run(settings, bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures

    options = {i["name"] for i in live(sim, "option")}
    rows = conn.execute("SELECT instrument, timestamp, open, high, low, close, volume, bid_price, ask_price, "
                        "mark_price, mark_iv, underlying_price, open_interest FROM options_ohlcv").fetchall()
    assert sorted(r[0] for r in rows) == sorted(options)  # exactly one row per live option
    assert {ms(r[1]) for r in rows} == {bar}
    assert all(r[9] is not None and r[10] is not None and r[11] is not None and r[12] is not None for r in rows)
    traded = 0
    for name, _, o, h, lo, c, v, *_ in rows:
        want = [w for w in truth_candles(trades_of(sim, name), bar + MINUTE_MS, option=True) if w[0] == bar]
        if want and want[0][5] > 0:  # it traded in that minute: real OHLCV from the chart
            traded += 1
            assert (o, h, lo, c, v) == pytest.approx(want[0][1:6], rel=1e-9, abs=1e-8), name
        else:
            assert (o, h, lo, c, v) == (None, None, None, None, None), name
    assert traded > 0
    idx = conn.execute("SELECT index_name, timestamp, price FROM index_prices ORDER BY 1").fetchall()
    assert [(r[0], ms(r[1])) for r in idx] == [("btc_usd", now), ("eth_usd", now)]
    assert all(r[2] > 0 for r in idx)

    again = rest.run(settings, bucket=bucket)  # same minute: nothing new
    assert again.exit_code == EXIT_OK and again.rows_inserted == 0
    status = conn.execute("SELECT state, details->>'failed' FROM collector_status WHERE job = 'rest'").fetchone()
    assert status == ("ok", "0")


def test_injected_10028_and_5xx_are_backed_off_and_the_pass_completes(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(speed=600, trade_rate=200, strikes=2, currencies=["BTC"])
    run_until(sim, START_MS + 10 * MINUTE_MS)
    pause(sim)
    control(sim, "fault", {"kind": "rest_errors", "count": 4})  # 10028, 13028, 10028, 13028
    out = rest.run(settings_for(sim, dsn, tmp_path / "spool", currencies="BTC", ohlcv_catchup_horizon_s="1h"),
                   bucket=bucket, client_kw=FAST)
    assert out.exit_code == EXIT_OK, out.failures
    assert out.retries == 4
    assert control(sim, "stats")["events"]["rest_errors_injected"] == 4
    n_options = conn.execute("SELECT count(*) FROM options_ohlcv").fetchone()[0]
    assert n_options == len(live(sim, "option"))
    assert conn.execute("SELECT count(*) FROM perpetuals_ohlcv").fetchone()[0] > 0


def test_an_instrument_failing_for_good_exits_nonzero_with_the_others_stored(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(speed=600, trade_rate=200, strikes=2)
    run_until(sim, START_MS + 10 * MINUTE_MS)
    pause(sim)
    # every attempt of ETH-PERPETUAL's first chart request fails (the client tries 5 times)
    control(sim, "fault", {"kind": "rest_errors", "count": 5, "instrument": "ETH-PERPETUAL", "code": 13028})
    env = {**os.environ, "DATABASE_URL": dsn, "DERIBIT_REST_URL": sim.urls["rest"],
           "COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"), "COLLECTOR_LOG_LEVEL": "WARNING",
           "OHLCV_CATCHUP_HORIZON": "1h"}
    proc = subprocess.run([sys.executable, "-m", "collector.cli", "rest"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert "ETH-PERPETUAL" in proc.stderr
    per_instrument = dict(conn.execute("SELECT instrument, count(*) FROM perpetuals_ohlcv GROUP BY 1").fetchall())
    assert "ETH-PERPETUAL" not in per_instrument and per_instrument["BTC-PERPETUAL"] > 0
    assert conn.execute("SELECT count(*) FROM futures_ohlcv").fetchone()[0] > 0
    assert conn.execute("SELECT count(*) FROM options_ohlcv").fetchone()[0] == len(live(sim, "option"))
    state, failures = conn.execute("SELECT state, details->'failures' FROM collector_status WHERE job = 'rest'").fetchone()
    assert state == "failed" and list(failures) == ["ETH-PERPETUAL"]
    gaps = conn.execute("SELECT relation, instrument, currency, cause, recoverable FROM data_gaps").fetchall()
    assert gaps == [("perpetuals_ohlcv", "ETH-PERPETUAL", "ETH", "rest_error", True)]

    # once the exchange answers again, the next run fills the hole and exits 0
    out = rest.run(settings_for(sim, dsn, tmp_path / "spool", ohlcv_catchup_horizon_s="1h"), bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    assert conn.execute("SELECT count(*) FROM perpetuals_ohlcv WHERE instrument = 'ETH-PERPETUAL'").fetchone()[0] > 0


def test_resume_starts_after_the_newest_stored_candle_within_the_horizon(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(speed=3600, trade_rate=200, strikes=2, currencies=["BTC"])
    run_until(sim, START_MS + 2 * HOUR_MS)
    now = pause(sim)
    minute = now - now % MINUTE_MS
    settings = settings_for(sim, dsn, tmp_path / "spool", currencies="BTC", ohlcv_catchup_horizon_s="1h")
    out = rest.run(settings, bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    first, last = conn.execute("SELECT min(timestamp), max(timestamp) FROM perpetuals_ohlcv").fetchone()
    assert ms(first) >= minute - HOUR_MS and ms(last) == minute - MINUTE_MS  # the horizon bounds the catch-up
    # lose the last 30 minutes: the next run fetches exactly those again
    conn.execute("DELETE FROM perpetuals_ohlcv WHERE timestamp > %s::timestamptz - interval '30 minutes'", (last,))
    with rest.RestPass(settings, "rest-resume-check", bucket=bucket) as p:
        starts = rest.resume_points(p, ["BTC-PERPETUAL"], minute)
    assert starts == {"BTC-PERPETUAL": minute - 30 * MINUTE_MS}
    again = rest.run(settings, bucket=bucket)
    assert again.exit_code == EXIT_OK
    assert conn.execute("SELECT count(*) FROM perpetuals_ohlcv WHERE timestamp > %s::timestamptz - interval '30 minutes'",
                        (last,)).fetchone()[0] == 30


def test_database_down_spools_and_the_next_run_replays(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(speed=600, trade_rate=200, strikes=2, currencies=["BTC"])
    run_until(sim, START_MS + 10 * MINUTE_MS)
    pause(sim)
    dead = "postgresql://nobody@127.0.0.1:1/none"
    out = rest.run(settings_for(sim, dead, tmp_path / "spool", currencies="BTC"), bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures  # everything is safe in the spool
    assert out.rows_spooled > 0 and out.rows_inserted == 0
    back = rest.run(settings_for(sim, dsn, tmp_path / "spool", currencies="BTC"), bucket=bucket)
    assert back.exit_code == EXIT_OK
    assert conn.execute("SELECT count(*) FROM options_ohlcv").fetchone()[0] == len(live(sim, "option"))
    assert not list((tmp_path / "spool" / "rest").glob("*.spool"))
