"""`collector replay` of every real Deribit message shape the tests carry (tests/data/deribit/): old 2019
books without ``type``, a change with ``prev_change_id`` 0, a snapshot carrying one, combos, an expired
option, a linear USDC option with a fractional strike, USDC perpetuals. Each row lands under its base
currency with the exchange's values; what we do not record is counted and reported, never misfiled."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from collector.config import Settings
from collector.deribit.instruments import base_of
from collector.jobs import replay
from collector.store import migrate, status

DATA = Path(__file__).resolve().parent.parent / "data" / "deribit"
CURRENCIES = ["BTC", "ETH", "MATIC"]   # MATIC: a linear base, its tables made by collector_ensure_currency
SHARED_WITH_CURRENCY = ("perpetuals_orderbook_depth",)   # the shared relations with a currency column


def messages(value) -> list[dict]:
    """The Deribit messages of one example file: a message, a list of them, or a request/response pair."""
    if isinstance(value, list):
        return [m for v in value for m in messages(v)]
    if isinstance(value, dict) and "response" in value:
        return messages(value["response"])
    return [value] if isinstance(value, dict) and "jsonrpc" in value else []


def capture(tmp_path: Path) -> tuple[Path, int]:
    """Every real (and docs) WebSocket message of tests/data/deribit as one capture, a message per line."""
    lines: list[str] = []
    for f in sorted(DATA.glob("ws_*.json")):
        lines += [json.dumps(m) for m in messages(json.loads(f.read_text()))]
    for f in sorted(DATA.glob("ws_*.jsonl")):
        lines += [ln for ln in f.read_text().splitlines() if ln.strip()]
    out = tmp_path / "captures.jsonl"
    out.write_text("\n".join(lines) + "\n")
    return out, len(lines)


@pytest.fixture
def db(dsn):
    with psycopg.connect(dsn) as conn:
        migrate.migrate(conn, CURRENCIES)
    return dsn


def q(dsn: str, sql: str, *args) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def test_every_real_shape_replays_into_the_right_currency(db, tmp_path):
    path, n = capture(tmp_path)
    settings = Settings.load(env={"DATABASE_URL": db, "COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
                                  "COLLECTOR_CURRENCIES": ",".join(CURRENCIES)})
    report = replay.replay(settings, [path])
    assert report["lines"] == n and report["spooled"] == 0 and report["dropped"] == 0 and report["rejected"] == 0

    # the linear option with a fractional strike: matic_option_quotes, prices in USDC as sent
    rows = q(db, "SELECT instrument, best_bid_price, best_ask_price, mark_price, underlying_price, index_price, "
                 "bid_iv, delta FROM matic_option_quotes")
    assert rows == [("MATIC_USDC-9MAR24-1d02-C", None, None, 0.139, 1.1367, 1.1367, None, 0.7869)]
    # the expired option (estimated_delivery_price "expired", ask_iv 500 on an empty book)
    rows = q(db, "SELECT best_bid_price, best_ask_price, ask_iv, mark_price, index_price FROM btc_option_quotes "
                 "WHERE instrument = 'BTC-8JUN20-8750-P'")
    assert rows == [(None, None, None, 0.0, 9729.25)]
    # type change with prev_change_id 0 is the first book of ETH-10SEP21-3350-P: a snapshot
    rows = q(db, "SELECT bid_prices, bid_amounts, ask_prices, change_id FROM eth_option_orderbook_depth "
                 "WHERE instrument = 'ETH-10SEP21-3350-P'")
    assert rows == [([0.019], [93.0], [0.037], 14617771529)]
    # a 2019 book without type (snapshot: no prev_change_id), and a 2022 snapshot carrying prev_change_id 20
    rows = dict(q(db, "SELECT instrument, bid_prices FROM perpetuals_orderbook_depth"))
    assert rows["ETH-PERPETUAL"] == [217.8, 217.75]
    assert rows["LINK_USDC-PERPETUAL"] == [7.562, 7.561, 7.56, 7.559, 7.558]
    # the linear BTC perpetual's trade: BTC's, with its coin amount
    rows = q(db, "SELECT trade_id, amount, price FROM perpetuals_trades WHERE instrument = 'BTC_USDC-PERPETUAL'")
    assert rows == [("USDC-2436803", 0.049, 21026.0)]

    # nothing misfiled: every per-currency table holds its own base only, shared rows say their base
    for cur in CURRENCIES:
        for rel in status.relations_for([cur])[len(status.COMMON_RELATIONS):]:
            bases = {base_of(i) for (i,) in q(db, f"SELECT DISTINCT instrument FROM {rel}")}  # noqa: S608
            assert bases <= {cur}, (rel, bases)
    for rel in SHARED_WITH_CURRENCY:
        for inst, cur in q(db, f"SELECT DISTINCT instrument, currency FROM {rel}"):  # noqa: S608
            assert base_of(inst) == cur, (rel, inst, cur)
    combos = ("BTC-STRD-30SEP22-20000", "BTC-FS-30SEP22_PERP", "BTC-CSR12-16SEP22-21000_23000")
    for rel in status.relations_for(CURRENCIES):
        if rel in ("index_prices",):
            continue
        assert not q(db, f"SELECT 1 FROM {rel} WHERE instrument = ANY(%s)", list(combos)), rel  # noqa: S608

    # combos' tickers (3) are understood and reported as not recorded; no message was not understood
    assert report["not_understood"] == 0, report["not_understood_by_reason"]
    assert report["not_recorded_by_reason"].get("ticker_not_option", 0) >= 3
    assert report["not_recorded"] == sum(report["not_recorded_by_reason"].values())

    # a second replay adds nothing
    again = replay.replay(settings, [path])
    assert again["inserted"] == 0 and again["duplicates"] == report["inserted"]


def test_a_base_that_is_not_recorded_is_reported_not_written(dsn, tmp_path):
    """MATIC without its tables (not in COLLECTOR_CURRENCIES): its quote is counted, nothing else breaks."""
    path, _ = capture(tmp_path)
    settings = Settings.load(env={"DATABASE_URL": dsn, "COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
                                  "COLLECTOR_CURRENCIES": "BTC,ETH"})
    report = replay.replay(settings, [path])
    assert report["spooled"] == 0 and report["dropped"] == 0
    assert report["not_recorded_by_reason"].get("currency_not_recorded", 0) >= 1
    assert q(dsn, "SELECT count(*) FROM btc_option_quotes WHERE instrument = 'BTC-5JUN20-9250-C'") == [(1,)]
