"""`collector funding` against the simulator and a real PostgreSQL: the history within the horizon, then
catch-up of the hours missed since, equal to the simulator's own funding history; nothing twice."""

from __future__ import annotations

from collector.jobs import funding
from collector.jobs.restjob import EXIT_OK
from tests.jobs.restsim import HOUR_MS, START_MS, control, ms, pause, run_until, settings_for

COLS = "timestamp, interest_1h, interest_8h, index_price, prev_index_price"


def truth(sim, cur: str, since: int, until: int) -> list[tuple]:
    rows = sim.call(lambda: list(sim.server.market.cur[cur].funding))
    return [(r["timestamp"], r["interest_1h"], r["interest_8h"], r["index_price"], r["prev_index_price"])
            for r in rows if since <= r["timestamp"] <= until]


def stored(conn, name: str) -> list[tuple]:
    return [(ms(r[0]), *r[1:]) for r in
            conn.execute(f"SELECT {COLS} FROM funding_rates WHERE instrument = %s ORDER BY timestamp", (name,))]


def test_history_then_catch_up_equals_the_simulator(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(speed=3600, strikes=2)
    run_until(sim, START_MS + HOUR_MS + 60_000)
    now = pause(sim)
    settings = settings_for(sim, dsn, tmp_path / "spool", funding_catchup_horizon_s="10d")
    out = funding.run(settings, bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    horizon_start = now - 10 * 24 * HOUR_MS
    for cur in ("BTC", "ETH"):
        want = truth(sim, cur, horizon_start, now)
        assert len(want) >= 240
        assert stored(conn, f"{cur}-PERPETUAL") == want

    # the box is off for a few hours: the next run fills exactly the missed hours
    control(sim, "clock", {"speed": 3600})
    run_until(sim, now + 3 * HOUR_MS)
    later = pause(sim)
    again = funding.run(settings, bucket=bucket)
    assert again.exit_code == EXIT_OK, again.failures
    assert again.rows_inserted == 2 * 3 and again.rows_duplicate == 0
    for cur in ("BTC", "ETH"):
        assert stored(conn, f"{cur}-PERPETUAL") == truth(sim, cur, horizon_start, later)

    third = funding.run(settings, bucket=bucket)  # right after: nothing new, nothing twice
    assert third.exit_code == EXIT_OK and third.rows_inserted == 0 and third.rows_duplicate == 0
