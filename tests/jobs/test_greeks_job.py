"""`collector greeks` against the simulator and a real PostgreSQL: every live option's greeks, the whole
universe of both currencies within Deribit's credits, an option gone between listing and fetch."""

from __future__ import annotations

import pytest

from collector.jobs import greeks
from collector.jobs.restjob import EXIT_OK, RestPass, Task
from collector.sim import views
from tests.jobs.restsim import control, live, pause, refused_10028, settings_for


def sim_ticker(sim, name: str) -> dict:
    return sim.call(lambda: views.ticker(sim.server.market, sim.server.market.find(name)))


def test_greeks_for_every_live_option_equal_the_simulator(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(strikes=2)
    pause(sim)
    out = greeks.run(settings_for(sim, dsn, tmp_path / "spool"), bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    options = sorted(i["name"] for i in live(sim, "option"))
    rows = conn.execute("SELECT instrument, currency, delta, gamma, vega, theta, rho, mark_iv, bid_iv, ask_iv, "
                        "mark_price, underlying_price, index_price FROM options_greeks ORDER BY instrument").fetchall()
    assert [r[0] for r in rows] == options
    for r in rows[:: max(1, len(rows) // 12)]:
        t = sim_ticker(sim, r[0])
        g = t["greeks"]
        assert r[1] == r[0].split("-")[0]
        assert r[2:7] == pytest.approx((g["delta"], g["gamma"], g["vega"], g["theta"], g["rho"]))
        assert r[7] == pytest.approx(t["mark_iv"]) and r[10] == pytest.approx(t["mark_price"])
        assert r[11] == pytest.approx(t["underlying_price"]) and r[12] == pytest.approx(t["index_price"])
    status = conn.execute("SELECT state, rows_written FROM collector_status WHERE job = 'greeks'").fetchone()
    assert status == ("ok", len(options))


def test_an_option_expired_between_listing_and_fetch_is_skipped_quietly(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(strikes=2, currencies=["BTC"])
    pause(sim)
    names = sorted(i["name"] for i in live(sim, "option"))[:3]
    control(sim, "fault", {"kind": "expire", "instrument": names[0]})  # after our "listing"
    with RestPass(settings_for(sim, dsn, tmp_path / "spool"), "greeks", bucket=bucket) as p:
        p.run([Task(n, greeks.greeks_task(p, n)) for n in names])
    assert p.outcome.exit_code == EXIT_OK and p.outcome.skipped == [names[0]]
    stored = [r[0] for r in conn.execute("SELECT instrument FROM options_greeks ORDER BY 1")]
    assert stored == names[1:]


def test_a_full_pass_over_both_currencies_never_gets_10028(rest_sim, dsn, conn, tmp_path):
    # the default universe of BTC and ETH: ~700 tickers, far beyond the burst of 100 requests
    sim = rest_sim()
    out = greeks.run(settings_for(sim, dsn, tmp_path / "spool"))
    assert out.exit_code == EXIT_OK, out.failures
    n_options = len(live(sim, "option"))
    assert n_options > 600
    # one book summary per currency= source: BTC, ETH and USDC (BTC's and ETH's own linear options)
    assert out.requests == n_options + 3 and out.retries == 0
    assert refused_10028(sim) == 0
    assert conn.execute("SELECT count(DISTINCT instrument) FROM options_greeks").fetchone()[0] == n_options
