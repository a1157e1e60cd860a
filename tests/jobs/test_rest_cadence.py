"""The Docker setup's REST_PERPETUAL_INTERVAL / REST_FUTURES_INTERVAL / REST_OPTIONS_OHLCV_INTERVAL, honoured by
`collector rest`: each kind is fetched when it is due, and a slower cadence loses no candle."""

from __future__ import annotations

import pytest

from collector.jobs import rest
from collector.jobs.restjob import EXIT_OK
from tests.jobs.restsim import MINUTE_MS, START_MS, control, pause, run_until, settings_for

KS = (2, 3, 4, 5, 6, 10, 12, 15, 20, 30)


def _counts(conn) -> tuple[int, int, int]:
    return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]   # type: ignore[return-value]
                 for t in ("perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv"))


def _advance_to(sim, minute_ms: int) -> int:
    """Run the simulated clock into the minute starting at ``minute_ms`` (slowly, so the pause lands in it)."""
    control(sim, "clock", {"speed": 30})
    run_until(sim, minute_ms + 15_000)
    now = pause(sim)
    assert now - now % MINUTE_MS == minute_ms, "the pause overshot the minute"
    return now


@pytest.mark.engines("postgres")   # the cadence is the REST pass's; both engines store it alike (test_rest_job)
def test_each_kind_on_its_own_cadence_and_no_candle_skipped(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(speed=600, trade_rate=200, strikes=2)
    run_until(sim, START_MS + 30 * MINUTE_MS)
    now = pause(sim)
    m = (now - now % MINUTE_MS) // MINUTE_MS
    k = next(k for k in KS if m % k not in (0, k - 1))    # neither this minute nor the next is a multiple of k
    settings = settings_for(sim, dsn, tmp_path / "spool", ohlcv_catchup_horizon_s="1h",
                            rest_perpetual_interval_s=f"{k}m", rest_futures_interval_s="1m",
                            rest_options_ohlcv_interval_s=f"{k}m")

    first_minute = now - now % MINUTE_MS
    first = rest.run(settings, bucket=bucket)
    assert first.exit_code == EXIT_OK, first.failures
    perp, fut, opt = _counts(conn)
    assert perp > 0 and fut > 0      # no candle stored yet: more than k minutes missing, so due
    assert opt == 0                  # not a multiple of k: the option row is not taken

    minute = now - now % MINUTE_MS
    now = _advance_to(sim, minute + MINUTE_MS)   # one more minute (not a multiple of k): futures only
    out = rest.run(settings, bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    perp2, fut2, opt2 = _counts(conn)
    assert perp2 == perp and fut2 > fut and opt2 == 0

    # on to the next multiple of k (fewer than k minutes after the first pass): the option row is taken;
    # the perpetuals are not due yet (fewer than k minutes missing)
    m = (now - now % MINUTE_MS) // MINUTE_MS
    minute = (m + k - m % k) * MINUTE_MS
    assert minute - first_minute < k * MINUTE_MS
    _advance_to(sim, minute)
    out = rest.run(settings, bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    perp3, _, opt3 = _counts(conn)
    assert perp3 == perp and opt3 > 0
    assert {r[0] for r in conn.execute("SELECT DISTINCT timestamp FROM options_ohlcv")} == {_ts(conn, minute - MINUTE_MS)}

    # k minutes after the first pass: the perpetuals' missing minutes, all of them, and no hole
    minute = first_minute + k * MINUTE_MS
    _advance_to(sim, minute)
    out = rest.run(settings, bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    perp4, _, opt4 = _counts(conn)
    assert perp4 > perp3 and opt4 == opt3          # not a multiple of k (k minutes after a non-multiple)
    holes = conn.execute("""
        SELECT instrument, count(*) FROM (
            SELECT instrument, timestamp - lag(timestamp) OVER (PARTITION BY instrument ORDER BY timestamp) AS step
            FROM perpetuals_ohlcv) s
        WHERE step <> interval '1 minute' GROUP BY instrument""").fetchall()
    assert holes == []
    assert conn.execute("SELECT max(timestamp) FROM perpetuals_ohlcv").fetchone()[0] == _ts(conn, minute - MINUTE_MS)


def _ts(conn, ms: int):
    return conn.execute("SELECT to_timestamp(%s / 1000.0)", (ms,)).fetchone()[0]
