"""The pure market model: universe calendar, naming, determinism, pricing."""

from __future__ import annotations

import datetime as dt
import re

from collector.sim import pricing, universe
from collector.sim.book import Book, diff_side
from collector.sim.market import Market

START = int(dt.datetime(2026, 11, 25, 12, tzinfo=dt.timezone.utc).timestamp() * 1000)
OPTION = re.compile(r"^(BTC|ETH)-\d{1,2}[A-Z]{3}\d{2}-\d+-[CP]$")


def test_universe_size_and_names():
    m = Market(["BTC", "ETH", "SOL"], 1, START)
    for cur in ("BTC", "ETH"):
        insts = [i for i in m.live.values() if i.cur == cur]
        opts = [i for i in insts if i.kind == "option"]
        futs = [i for i in insts if i.kind == "future" and not i.perp]
        assert len(opts) >= 300 and len({i.expiry for i in opts}) >= 6
        assert len(futs) >= 6 and f"{cur}-PERPETUAL" in m.live
        assert all(OPTION.match(i.name) for i in opts)
        periods = {i.obj["settlement_period"] for i in opts}
        assert {"day", "week", "month"} <= periods
        for i in insts:
            if not i.perp:
                assert dt.datetime.fromtimestamp(i.expiry / 1000, dt.timezone.utc).time() == dt.time(8)
    assert any(i.cur == "SOL" for i in m.live.values())


def test_deterministic_from_seed():
    a, b, c = Market(["BTC"], 5, START), Market(["BTC"], 5, START), Market(["BTC"], 6, START)
    assert [i.obj for i in a.live.values()] == [i.obj for i in b.live.values()]
    a.advance(START + 3_600_000, 0)
    b.advance(START + 3_600_000, 0)
    assert a.cur["BTC"].index == b.cur["BTC"].index
    assert [i.obj for i in a.live.values()] != [i.obj for i in c.live.values()]


def test_quarterly_and_monthly_calendar():
    days = universe.option_expiries(START)
    assert dt.date(2026, 12, 25) in days and dt.date(2027, 3, 26) in days
    assert universe.date_code(dt.date(2026, 12, 27)) == "27DEC26"
    assert universe.strike_text(0.625) == "0d625"


def test_black76_bounds_and_parity():
    for strike in (40000, 60000, 90000):
        c = pricing.black76(60000, strike, 0.1, 0.6, True)
        p = pricing.black76(60000, strike, 0.1, 0.6, False)
        assert abs((c["price_usd"] - p["price_usd"]) - (60000 - strike)) < 1e-6
        assert 0 <= c["delta"] <= 1 and -1 <= p["delta"] <= 0
        assert c["gamma"] == p["gamma"] >= 0 and c["theta"] <= 0


def test_book_diff():
    import random
    b = Book(0.5, 10, 100, random.Random(1))
    b.recentre(1000.0, 0.5)
    old_b = dict(b.bids)
    b.recentre(1003.0, 0.5)
    applied = dict(old_b)
    for action, price, amount in diff_side(old_b, b.bids):
        if action == "delete":
            applied.pop(price)
        else:
            applied[price] = amount
    assert applied == b.bids and max(b.bids) < min(b.asks)
