"""SOL and its kin, end to end: USDC-margined linear bases recorded from the simulator's USDC universe.

On Deribit SOL is listed under ``currency=USDC`` (``SOL_USDC-PERPETUAL``, ``SOL_USDC-…-150-C``, index
``sol_usdc``), next to XRP (fractional strikes, ``XRP_USDC-…-0d62-C``) and BTC's own linear
``BTC_USDC-PERPETUAL``. Every job must ask for USDC, keep its own base's instruments and file them under
it; BTC's linear instruments are recorded with BTC's (the README's choice)."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from collector.config import Settings
from collector.deribit.instruments import base_of, is_linear, is_option, strike_of
from collector.jobs import depth, funding, greeks, rest
from collector.jobs.restjob import EXIT_OK
from collector.errors import CollectorError
from collector.store import migrate
from tests.jobs import restsim, wsrun
from tests.jobs.restsim import MINUTE_MS, START_MS, live, pause, run_until


def add_currencies(dsn: str, *currencies: str) -> None:
    """What `collector db migrate` does for COLLECTOR_CURRENCIES=…,SOL: collector_ensure_currency."""
    with psycopg.connect(dsn) as conn:
        migrate.migrate(conn, currencies)


def test_every_rest_job_records_linear_bases_under_their_own_currency(rest_sim, dsn, conn, tmp_path, bucket):
    sim = rest_sim(currencies=["BTC", "SOL"], speed=600, trade_rate=400, strikes=2)   # + XRP, BTC_USDC-PERPETUAL
    add_currencies(dsn, "SOL", "XRP")
    run_until(sim, START_MS + 20 * MINUTE_MS)
    pause(sim)
    s = restsim.settings_for(sim, dsn, tmp_path / "spool", currencies="BTC,SOL,XRP", ohlcv_catchup_horizon_s="1h",
                             funding_catchup_horizon_s="1d", depth_top_n=5)
    for job in (rest, depth, greeks, funding):
        out = job.run(s, bucket=bucket)
        assert out.exit_code == EXIT_OK, (job.JOB, out.failures)

    listed = live(sim)
    perps = sorted(i["name"] for i in listed if i["perp"])
    assert perps == ["BTC-PERPETUAL", "BTC_USDC-PERPETUAL", "SOL_USDC-PERPETUAL", "XRP_USDC-PERPETUAL"]
    options = {i["name"]: i["cur"] for i in listed if i["kind"] == "option"}
    assert {c for c in options.values()} == {"BTC", "SOL", "XRP"}
    assert any(n.startswith("XRP_USDC-") and "d" in n.split("-")[2] for n in options)   # fractional strikes

    def by_instrument(sql: str) -> dict:
        return {r[0]: r[1:] for r in conn.execute(sql).fetchall()}

    candles = by_instrument("SELECT DISTINCT instrument, currency FROM perpetuals_ohlcv")
    assert candles == {p: (base_of(p),) for p in perps}
    fund = by_instrument("SELECT DISTINCT instrument, currency FROM funding_rates")
    assert fund == {p: (base_of(p),) for p in perps}
    books = by_instrument("SELECT DISTINCT instrument, currency FROM perpetuals_orderbook_depth")
    assert books == {p: (base_of(p),) for p in perps}

    bars = by_instrument("SELECT instrument, currency, mark_price, index_price FROM options_ohlcv")
    assert {n: r[0] for n, r in bars.items()} == options          # one row per live option, its own base
    xrp = {n: r for n, r in bars.items() if n.startswith("XRP_USDC-")}
    assert xrp and all(r[2] < 2.0 for r in xrp.values())          # index in USDC (~0.6), not a BTC price
    sol_calls = [(n, r[1]) for n, r in bars.items() if n.startswith("SOL_USDC-") and n.endswith("-C")]
    itm = [(n, mark) for n, mark in sol_calls if strike_of(n) < 0.8 * bars[n][2]]
    assert all(mark > 1.0 for _, mark in itm)                     # a deep call is worth USDC, not a coin fraction
    greek_rows = by_instrument("SELECT instrument, currency FROM options_greeks")
    assert {n: r[0] for n, r in greek_rows.items()} == options

    index = {r[0] for r in conn.execute("SELECT DISTINCT index_name FROM index_prices")}
    assert index == {"btc_usd", "sol_usdc", "xrp_usdc"}
    for cur in ("btc", "sol", "xrp"):
        got = {r[0] for r in conn.execute(f"SELECT instrument FROM {cur}_option_orderbook_depth")}  # noqa: S608
        assert got == {n for n, c in options.items() if c == cur.upper()}


def control_clock_stop(sim) -> None:
    wsrun.control(sim, "clock", {"speed": 0})


def test_the_sol_stream_records_sol_only(pg, dsn, tmp_path):
    sim = wsrun.start_sim(currencies=["BTC", "ETH", "SOL"], strikes=2, rate=500, trade_rate=400)
    add_currencies(dsn, "SOL")
    settings = wsrun.settings_for(sim, dsn, tmp_path / "spool", COLLECTOR_CURRENCIES="BTC,ETH,SOL",
                                  WS_SOL_TOP_N_INSTRUMENTS="0")
    job = wsrun.JobThread(settings, "SOL", options=replace(wsrun.FAST, book_snapshot_every_s=0.5)).start()
    try:
        wsrun.wait_until(lambda: job.job.ready, 30, what="READY")
        sol_options = {i.name for i in sim.call(lambda: list(sim.server.market.live.values()))
                       if i.kind == "option" and i.cur == "SOL"}
        assert job.job.followed == sol_options                    # the whole SOL chain, nothing of XRP
        wsrun.wait_until(lambda: wsrun.rows(dsn, "SELECT count(*) FROM sol_option_trades")[0][0] >= 5, 60,
                         what="SOL option trades")
        wsrun.wait_until(lambda: wsrun.rows(dsn, "SELECT count(*) FROM perpetuals_orderbook_depth "
                                                 "WHERE instrument = 'SOL_USDC-PERPETUAL'")[0][0] > 0, 30,
                         what="the SOL perpetual's book")
        wsrun.wait_until(lambda: wsrun.rows(dsn, "SELECT count(*) FROM index_prices "
                                                 "WHERE index_name = 'sol_usdc'")[0][0] > 0, 30, what="sol_usdc")
        wsrun.wait_until(lambda: job.job.pipeline.counts["trade_other_currency"] > 0, 30,
                         what="XRP's and BTC_USDC's trades on trades.option.USDC, left out")
        control_clock_stop(sim)
        assert job.stop() == 0
        truth = wsrun.sim_option_trades(sim, "SOL")
    finally:
        job.stop()
        sim.stop()
    for table in ("sol_option_quotes", "sol_option_trades"):
        names = {r[0] for r in wsrun.rows(dsn, f"SELECT DISTINCT instrument FROM {table}")}  # noqa: S608
        assert names and names <= sol_options, table
    trades = set(wsrun.db_option_trades(dsn, "SOL"))
    assert trades and trades <= truth                              # the exchange's SOL trades
    assert all(is_linear(n) and is_option(n) for n, _ in trades)
    depth_names = {r[0] for r in wsrun.rows(dsn, "SELECT DISTINCT instrument FROM perpetuals_orderbook_depth")}
    assert depth_names == {"SOL_USDC-PERPETUAL"}
    assert wsrun.rows(dsn, "SELECT count(*) FROM btc_option_trades")[0][0] == 0


def trade(name: str, seq: int) -> dict:
    return {"trade_seq": seq, "trade_id": f"USDC-{seq}", "timestamp": 1709809020064, "tick_direction": 0,
            "price": 0.139, "mark_price": 0.14, "iv": 209.6, "instrument_name": name, "index_price": 1.1367,
            "direction": "buy", "amount": 10.0}


def test_a_linear_base_streams_usdc_channels_and_keeps_its_own_trades():
    from collector.deribit.pipeline import Pipeline
    from collector.jobs.ws_lifecycle import Lifecycle

    def nothing(*_a, **_k):
        return None

    lc = Lifecycle("SOL", 0, None, fetch_chain=nothing, forget_instrument=nothing, spawn=nothing)  # type: ignore[arg-type]
    chans = lc.base_channels()
    assert {"trades.option.USDC.100ms", "deribit_price_index.sol_usdc", "instrument.state.option.USDC",
            "book.SOL_USDC-PERPETUAL.100ms", "ticker.SOL_USDC-PERPETUAL.100ms"} <= set(chans)
    assert not [c for c in chans if ".SOL." in c or c.endswith(".SOL") or "sol_usd" == c.rsplit(".", 1)[-1]]
    btc = Lifecycle("BTC", 0, None, fetch_chain=nothing, forget_instrument=nothing, spawn=nothing)  # type: ignore[arg-type]
    assert {"trades.option.BTC.100ms", "trades.option.USDC.100ms", "deribit_price_index.btc_usd"} <= \
        set(btc.base_channels())

    rows: list = []
    p = Pipeline("SOL", rows.append)
    p.handle("trades.option.USDC.100ms", [trade("SOL_USDC-27DEC24-150-C", 1), trade("XRP_USDC-27DEC24-0d6-C", 1),
                                          trade("BTC_USDC-27DEC24-60000-C", 1)])
    assert [(r.instrument, r.currency) for r in rows] == [("SOL_USDC-27DEC24-150-C", "SOL")]
    assert p.counts["trade_other_currency"] == 2 and not p.bad


def test_fetch_chain_asks_usdc_and_keeps_the_base():
    from collector.jobs import chain

    class Client:
        asked: list = []

        def get_instruments(self, currency, kind=None):
            self.asked.append(currency)
            return [{"instrument_name": n, "is_active": True} for n in
                    ("SOL_USDC-27DEC24-150-C", "SOL_USDC-27DEC24-1d5-P", "XRP_USDC-27DEC24-0d6-C")]

        def get_book_summary_by_currency(self, currency, kind=None):
            return [{"instrument_name": "XRP_USDC-27DEC24-0d6-C", "open_interest": 9e9},
                    {"instrument_name": "SOL_USDC-27DEC24-1d5-P", "open_interest": 5.0},
                    {"instrument_name": "SOL_USDC-27DEC24-150-C", "open_interest": 7.0}]

    c = Client()
    live_names, ranked = chain.fetch_chain(c, "SOL", 0)
    assert c.asked == ["USDC"]
    assert live_names == {"SOL_USDC-27DEC24-150-C", "SOL_USDC-27DEC24-1d5-P"}
    assert ranked == ["SOL_USDC-27DEC24-150-C", "SOL_USDC-27DEC24-1d5-P"]
    assert chain.sources(["BTC", "ETH", "SOL", "XRP"]) == ["BTC", "USDC", "ETH"]
    split = chain.split({"BTC": [{"instrument_name": "BTC-PERPETUAL"}],
                         "USDC": [{"instrument_name": n} for n in ("BTC_USDC-PERPETUAL", "SOL_USDC-PERPETUAL")]},
                        ["BTC", "SOL", "ETH"])
    assert {k: [i["instrument_name"] for i in v] for k, v in split.items()} == {
        "BTC": ["BTC-PERPETUAL", "BTC_USDC-PERPETUAL"], "SOL": ["SOL_USDC-PERPETUAL"], "ETH": []}


def test_usdc_is_no_currency_of_ours():
    assert Settings.load(env={"COLLECTOR_CURRENCIES": "btc,eth,sol"}).currencies == ("BTC", "ETH", "SOL")
    with pytest.raises(CollectorError, match="USDC is a settlement currency on Deribit"):
        Settings.load(env={"COLLECTOR_CURRENCIES": "BTC,USDC"})
