"""`collector replay`: an archive of a live run gives the same rows as the run; bad lines are counted."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import psycopg

from collector.config import Settings
from collector.jobs import replay

from tests.jobs.wsrun import FAST, JobThread, control, rows, settings_for, start_sim, wait_until
from tests.pgtools import create_database, drop_database, dsn_of

COLLECTOR = str(Path(sys.executable).parent / "collector")
TABLES = {
    "btc_option_quotes": "instrument, timestamp",
    "btc_option_trades": "instrument, trade_seq",
    "index_prices": "index_name, timestamp",
    "perpetuals_orderbook_depth": "instrument, timestamp",
    "perpetuals_quotes": "instrument, timestamp",
    "perpetuals_trades": "instrument, trade_seq",
}


def dump(dsn: str, table: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {TABLES[table]}").fetchall()  # noqa: S608 - fixed names


def test_replaying_the_archive_of_a_live_run_gives_the_same_rows(pg, migrated_template, dsn, tmp_path):
    sim = start_sim(strikes=3, rate=500, trade_rate=200, speed=0)
    archive = tmp_path / "archive"
    job = JobThread(settings_for(sim, dsn, tmp_path / "spool"), options=replace(FAST, book_snapshot_every_s=60.0),
                    archive_dir=archive).start()
    other = create_database(pg, template=migrated_template)
    try:
        wait_until(lambda: job.job.ready, 30, what="READY")
        control(sim, "clock", {"speed": 1})
        wait_until(lambda: rows(dsn, "SELECT count(*) FROM btc_option_trades")[0][0] > 100, 30, what="trades")
        control(sim, "clock", {"speed": 0})
        job.job.session.stop()            # no more frames: what was archived is what was stored
        wait_until(lambda: not job.job.session.connected, 10)
        assert job.stop() == 0

        files = sorted(archive.rglob("*.jsonl.gz"))
        assert files and all(f.parent.name == "BTC" for f in files)
        other_dsn = dsn_of(pg, other)
        env_out = subprocess.run([COLLECTOR, "--database-url", other_dsn, "replay", *map(str, files)],
                                 capture_output=True, text=True, timeout=120,
                                 env={"COLLECTOR_SPOOL_DIR": str(tmp_path / "spool2"), "PATH": "/usr/bin:/bin"})
        assert env_out.returncode == 0, env_out.stderr[-2000:]
        report = json.loads(env_out.stdout)
        assert report["not_understood"] == 0
        assert report["control_frames"] > 0            # the subscribe answers, heartbeats: read, not rows
        for table in TABLES:
            live = dump(dsn, table)
            assert live, f"the live run wrote no {table}"
            assert dump(other_dsn, table) == live, f"{table} differs"
        # a second replay adds nothing
        again = replay.replay(replace(job.job.s, database_url=other_dsn, spool_dir=tmp_path / "spool3"), files)
        assert again["inserted"] == 0 and again["duplicates"] > 0
    finally:
        job.stop()
        sim.stop()
        drop_database(pg, other)


TICKER = {"instrument_name": "BTC-27DEC26-100000-C", "timestamp": 1795766400000, "best_bid_price": 0.05,
          "best_bid_amount": 3.0, "best_ask_price": 0.055, "best_ask_amount": 1.5, "mark_price": 0.052,
          "mark_iv": 55.1, "bid_iv": 54.0, "ask_iv": 56.0, "underlying_price": 100100.0,
          "underlying_index": "BTC-27DEC26", "index_price": 100000.0, "open_interest": 12.0}
TRADE = {"trade_seq": 7, "trade_id": "123", "timestamp": 1795766400100, "tick_direction": 0, "price": 0.05,
         "mark_price": 0.051, "iv": 55.0, "instrument_name": "BTC-27DEC26-100000-C", "index_price": 100000.0,
         "direction": "buy", "amount": 1.0}


def note(channel: str, data) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})


def test_malformed_and_unexpected_messages_are_counted_logged_once_never_fatal(dsn, tmp_path, caplog):
    tick = "ticker.BTC-27DEC26-100000-C.100ms"
    lines = [
        note(tick, TICKER),                                              # a quote
        note(tick, {**TICKER, "mark_price": 0.053}),                     # same book, new mark: no row
        note(tick, {**TICKER, "timestamp": 1795766400200, "best_bid_price": 0.051, "extra_field": [1, 2]}),
        note("chart.trades.BTC-PERPETUAL.1", {"tick": 1}),               # unknown channel
        note(tick, {k: v for k, v in TICKER.items() if k != "timestamp"}),  # missing field
        note(tick, {**TICKER, "best_ask_price": "0.06"}),                # wrong type
        note(tick, None),                                                # no data at all
        '{"jsonrpc":"2.0","method":"subscr',                             # truncated JSON
        '{"jsonrpc":"2.0","method":"subscr',                             # ... twice: logged once
        "\x00\x01 not json",
        "[1, 2, 3]",
        note("trades.option.BTC.100ms", [TRADE, {**TRADE, "trade_seq": "8", "trade_id": "124"}]),
        note("book.BTC-PERPETUAL.100ms", {"timestamp": 1795766400000, "instrument_name": "BTC-PERPETUAL",
                                          "change_id": 5, "bids": [["new", 99990.0, 10.0]],
                                          "asks": [["new", 100010.0, 20.0]]}),  # 2019 shape: no type
        json.dumps({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}),
        json.dumps({"jsonrpc": "2.0", "id": 3, "result": ["ticker.x"], "usIn": 1, "usOut": 2, "usDiff": 1,
                    "testnet": False}),
    ]
    capture = tmp_path / "capture.jsonl"
    capture.write_text("\n".join(lines) + "\n")
    settings = Settings.load(env={"DATABASE_URL": dsn, "COLLECTOR_SPOOL_DIR": str(tmp_path / "spool")})
    with caplog.at_level(logging.WARNING):
        report = replay.replay(settings, [capture])
    assert report["lines"] == len(lines)
    assert report["quotes"] == 2 and report["quotes_unchanged"] == 1
    assert report["trades"] == 1 and report["book"] == 1
    assert report["control_frames"] == 2
    assert report["not_understood"] == 9
    assert report["inserted"] == 2 + 1 + 1
    assert rows(dsn, "SELECT best_bid_price FROM btc_option_quotes ORDER BY timestamp") == [(0.05,), (0.051,)]
    assert rows(dsn, "SELECT trade_seq, iv FROM btc_option_trades") == [(7, 55.0)]
    assert rows(dsn, "SELECT bid_prices, ask_amounts FROM perpetuals_orderbook_depth") == [([99990.0], [20.0])]
    logged = [r for r in caplog.records if r.getMessage() == "bad_message"]
    reasons = [r.reason for r in logged]
    assert len(reasons) == len(set(reasons)), "a reason was logged twice"
    assert sum(1 for r in reasons if "invalid JSON" in r) == 2   # the truncated line and the garbage


PERP_TICKER = {"timestamp": 1795766400000, "instrument_name": "BTC-PERPETUAL", "state": "open",
               "best_bid_price": 99999.5, "best_bid_amount": 5000, "best_ask_price": 100000.0, "best_ask_amount": 100,
               "mark_price": 99999.8, "index_price": 100001.2, "current_funding": 0.00001, "funding_8h": 0.0000211,
               "open_interest": 502097590, "interest_value": 1.73, "last_price": 100000.0,
               "stats": {"high": 101000.0, "low": 99000.0, "price_change": 0.7, "volume": 7871.0, "volume_usd": 2.8e8}}
PERP_TRADE = {"trade_seq": 30289442, "trade_id": "48079269", "timestamp": 1795766400050, "tick_direction": 2,
              "price": 99999.5, "mark_price": 99999.8, "instrument_name": "BTC-PERPETUAL", "index_price": 100001.2,
              "direction": "sell", "amount": 10}


def test_the_perpetuals_ticks_replay_into_their_tables(dsn, tmp_path):
    tick, trades = "ticker.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.100ms"
    lines = [
        note(tick, PERP_TICKER),
        note(tick, {**PERP_TICKER, "timestamp": 1795766400100, "mark_price": 99999.9}),    # same top: no row
        note(tick, {**PERP_TICKER, "timestamp": 1795766400200, "best_ask_amount": 150}),  # a size: a row
        note(trades, [PERP_TRADE, {**PERP_TRADE, "trade_seq": 30289443, "trade_id": "48079270", "liquidation": "M"}]),
        note(trades, [{**PERP_TRADE, "trade_seq": 30289446, "trade_id": "48079273"}]),     # a gap of 2
    ]
    capture = tmp_path / "perp.jsonl"
    capture.write_text("\n".join(lines) + "\n")
    settings = Settings.load(env={"DATABASE_URL": dsn, "COLLECTOR_SPOOL_DIR": str(tmp_path / "spool")})
    report = replay.replay(settings, [capture])
    assert (report["perpetual_quotes"], report["perpetual_quotes_unchanged"], report["perpetual_trades"]) == (2, 1, 3)
    assert report["trade_gaps"] == 1 and report["not_understood"] == 0 and report["inserted"] == 5
    assert rows(dsn, "SELECT best_ask_amount, funding_rate, funding_8h, open_interest FROM perpetuals_quotes "
                     "ORDER BY timestamp") == [(100.0, 1e-05, 2.11e-05, 502097590.0), (150.0, 1e-05, 2.11e-05, 502097590.0)]
    assert rows(dsn, "SELECT trade_seq, trade_id, amount, liquidation FROM perpetuals_trades ORDER BY 1") == [
        (30289442, "48079269", 10.0, None), (30289443, "48079270", 10.0, "M"), (30289446, "48079273", 10.0, None)]
    assert replay.replay(settings, [capture])["inserted"] == 0      # a second replay adds nothing
