"""A database filled by a real run of the jobs against the simulator, once per engine per session.

``collector run-all`` (the stream of BTC and ETH, and the rest, funding, depth and greeks passes) runs
against the simulator on loopback until every time-series table of the collector has rows, a
connection drop has been recorded in data_gaps and the next rest pass has stored a closed minute of
candles; then SIGTERM. The database is frozen as a template and each test gets a clone of it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.jobs.wsrun import control, process_env, start_sim, wait_until
from tests.pgtools import create_database, dsn_of, make_template, migrated_database

COLLECTOR = str(Path(sys.executable).parent / "collector")
CURRENCIES = ("BTC", "ETH")
TABLES = ("index_prices", "perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv", "options_greeks", "funding_rates",
          "perpetuals_orderbook_depth", "collector_status", "data_gaps",
          *(f"{c.lower()}_{t}" for c in CURRENCIES for t in ("option_quotes", "option_trades", "option_orderbook_depth")))

_templates: dict[tuple[str, int], str] = {}   # (host, port) of a server -> its filled template database


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _fill(dsn: str, spool: Path) -> None:
    sim = start_sim(currencies=list(CURRENCIES), strikes=3, rate=300, trade_rate=100)
    env = process_env(sim, dsn, spool)
    env.update({"COLLECTOR_CURRENCIES": ",".join(CURRENCIES), "WS_ETH_TOP_N_INSTRUMENTS": "0",
                "DEPTH_OPTIONS_TOP_N": "0"})
    p = subprocess.Popen([COLLECTOR, "run-all"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait_until(lambda: _count(dsn, "btc_option_quotes") > 0 and _count(dsn, "eth_option_quotes") > 0, 60,
                   what="quotes of both currencies")
        control(sim, "fault", {"kind": "drop_connections"})   # a disconnect: data_gaps rows
        for table in TABLES:
            wait_until(lambda: _count(dsn, table) > 0, 150, every=0.5, what=f"rows in {table}")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        sim.stop()


def filled_clone(proc, tmp_path_factory) -> str:
    """A fresh database (its DSN) cloned from this server's filled template (made on first use)."""
    key = (proc.host, proc.port)
    if key not in _templates:
        dsn = migrated_database(proc, CURRENCIES)
        _fill(dsn, tmp_path_factory.mktemp("fill-spool"))
        name = dsn.rsplit("/", 1)[1]
        make_template(proc, name)
        _templates[key] = name
    return dsn_of(proc, create_database(proc, template=_templates[key]))
