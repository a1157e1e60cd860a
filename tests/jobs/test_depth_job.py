"""`collector depth` against the simulator and a real PostgreSQL: top-N books of the perpetuals and the
options (all of them, or the top N by open interest), into the per-currency relations."""

from __future__ import annotations

from collector.jobs import depth
from collector.jobs.restjob import EXIT_OK, RestPass, Task
from tests.jobs.restsim import control, live, pause, settings_for


def test_request_depth_is_the_smallest_allowed_that_covers_n():
    assert [depth.request_depth(n) for n in (1, 3, 20, 21, 500, 10000)] == [1, 5, 20, 50, 1000, 10000]


def test_top_by_open_interest():
    rows = [{"instrument_name": "A", "open_interest": 1.0}, {"instrument_name": "B", "open_interest": 9.0},
            {"instrument_name": "C", "open_interest": None}, {"instrument_name": "D", "open_interest": 9.0}]
    assert depth.top_by_open_interest(rows, 2) == ["B", "D"]
    assert depth.top_by_open_interest(rows, 0) == ["B", "D", "A", "C"]


def test_perpetuals_and_every_option_land(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(strikes=2)
    pause(sim)
    out = depth.run(settings_for(sim, dsn, tmp_path / "spool", depth_top_n=5), bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    perps = conn.execute("SELECT instrument, depth, cardinality(bid_prices), cardinality(ask_prices), "
                         "best_bid_price, best_ask_price, change_id FROM perpetuals_orderbook_depth ORDER BY 1").fetchall()
    assert [p[0] for p in perps] == ["BTC-PERPETUAL", "ETH-PERPETUAL"]
    for _, d, nb, na, bid, ask, change_id in perps:
        assert d == 5 and nb == 5 and na == 5 and bid < ask and change_id > 0
    for cur in ("btc", "eth"):
        options = sorted(i["name"] for i in live(sim, "option") if i["cur"] == cur.upper())
        got = [r[0] for r in conn.execute(f"SELECT instrument FROM {cur}_option_orderbook_depth ORDER BY 1")]
        assert got == options
    assert conn.execute("SELECT max(cardinality(bid_prices)) FROM (SELECT bid_prices FROM btc_option_orderbook_depth "
                        "UNION ALL SELECT bid_prices FROM eth_option_orderbook_depth) d").fetchone()[0] <= 5


def test_only_the_top_n_options_by_open_interest(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(strikes=2)
    pause(sim)
    out = depth.run(settings_for(sim, dsn, tmp_path / "spool", depth_options_top_n=3), bucket=bucket)
    assert out.exit_code == EXIT_OK, out.failures
    for cur in ("BTC", "ETH"):
        chain = sorted((i for i in live(sim, "option") if i["cur"] == cur), key=lambda i: (-i["oi"], i["name"]))
        got = [r[0] for r in conn.execute(f"SELECT instrument FROM {cur.lower()}_option_orderbook_depth ORDER BY 1")]
        assert got == sorted(i["name"] for i in chain[:3])
    assert conn.execute("SELECT min(depth), max(depth) FROM (SELECT depth FROM btc_option_orderbook_depth "
                        "UNION ALL SELECT depth FROM eth_option_orderbook_depth) d").fetchone() == (20, 20)


def test_an_option_expired_between_listing_and_fetch_is_skipped_quietly(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(strikes=2, currencies=["BTC"])
    pause(sim)
    names = sorted(i["name"] for i in live(sim, "option"))[:2]
    control(sim, "fault", {"kind": "expire", "instrument": names[0]})
    with RestPass(settings_for(sim, dsn, tmp_path / "spool"), "depth", bucket=bucket) as p:
        p.run([Task(n, depth.snapshot_task(p, n, 20, option=True)) for n in names])
    assert p.outcome.exit_code == EXIT_OK and p.outcome.skipped == [names[0]]
    assert [r[0] for r in conn.execute("SELECT instrument FROM btc_option_orderbook_depth")] == [names[1]]
