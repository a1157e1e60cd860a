"""The stream's pure core: notifications in, rows and continuity events out (no I/O, no clock)."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec

from collector import records as R
from collector.deribit.pipeline import Pipeline
from collector.deribit.sequence import BookStatus, TradeGap

OPT = "BTC-27DEC26-100000-C"
T0 = 1_790_000_000_000  # ms


def ticker(ts: int, bid: float, ask: float = 0.02, mark: float = 0.015, inst: str = OPT) -> dict:
    return {"timestamp": ts, "instrument_name": inst, "best_bid_price": bid, "best_bid_amount": 1.0,
            "best_ask_price": ask, "best_ask_amount": 2.0, "mark_price": mark, "mark_iv": 55.0,
            "greeks": {"delta": 0.4, "gamma": 0.0001, "vega": 50.0, "theta": -20.0, "rho": 5.0},
            "last_price": 0.014, "stats": {"volume": 12.5}}


def trade(seq: int, ts: int, inst: str = OPT) -> dict:
    return {"timestamp": ts, "instrument_name": inst, "trade_seq": seq, "trade_id": f"t{seq}", "price": 0.01,
            "amount": 1.0, "direction": "buy"}


class Events:
    def __init__(self) -> None:
        self.rows: list[R.Record] = []
        self.gaps: list[tuple] = []
        self.breaks: list[tuple] = []
        self.states: list = []
        self.bad: list[tuple[str, str]] = []

    def pipeline(self, **kw) -> Pipeline:
        return Pipeline("BTC", self.rows.append, on_trade_gap=lambda *a: self.gaps.append(a),
                        on_book_break=lambda *a: self.breaks.append(a), on_state=self.states.append,
                        on_bad=lambda *a: self.bad.append(a), **kw)


def test_a_quote_row_only_when_the_best_bid_or_ask_changes_with_the_tickers_greeks():
    ev = Events()
    p = ev.pipeline()
    p.handle(f"ticker.{OPT}.100ms", ticker(T0, 0.01))
    p.handle(f"ticker.{OPT}.100ms", ticker(T0 + 100, 0.01, mark=0.016))   # only the mark moved
    p.handle(f"ticker.{OPT}.100ms", msgspec.Raw(msgspec.json.encode(ticker(T0 + 200, 0.011))))  # the fast path
    p.handle("ticker.BTC-PERPETUAL.100ms", ticker(T0, 90000.0, 90001.0, inst="BTC-PERPETUAL"))
    assert [q.best_bid_price for q in ev.rows] == [0.01, 0.011]
    assert p.counts["quotes_unchanged"] == 1 and p.counts["ticker_not_option"] == 1
    q = ev.rows[0]
    assert (q.delta, q.gamma, q.vega, q.theta, q.rho) == (0.4, 0.0001, 50.0, -20.0, 5.0)
    assert (q.last_price, q.volume_24h, q.implied_volatility, q.mark_iv) == (0.014, 12.5, 55.0, 55.0)
    assert q.timestamp == datetime.fromtimestamp(T0 / 1000, timezone.utc)
    other = Events()
    other.pipeline().handle(f"ticker.{OPT}.100ms", ticker(T0 + 200, 0.011))   # the dict path, same ticker
    assert other.rows == [ev.rows[1]]


def test_trades_jump_duplicate_and_backfill_advance():
    ev = Events()
    p = ev.pipeline()
    p.seed_trades({OPT: 10})
    p.handle("trades.option.BTC.100ms", [trade(11, T0), trade(14, T0 + 5)])
    assert [t.trade_seq for t in ev.rows] == [11, 14]
    (gap, last_at, seen_at), = ev.gaps
    assert gap == TradeGap(OPT, 12, 13)
    assert last_at == datetime.fromtimestamp(T0 / 1000, timezone.utc)      # the gap starts at the previous trade
    assert seen_at == datetime.fromtimestamp((T0 + 5) / 1000, timezone.utc)
    p.handle("trades.option.BTC.100ms", [trade(14, T0 + 5), trade(13, T0 + 4)])
    assert p.counts["trade_duplicates"] == 2 and len(ev.rows) == 2
    assert p.advance_trades(OPT, [12, 13]) == 14
    p.forget(OPT)                     # an expired instrument: its baseline goes with it
    p.handle("trades.option.BTC.100ms", [trade(100, T0 + 9)])
    assert len(ev.gaps) == 1 and ev.rows[-1].trade_seq == 100   # a new baseline, no gap 15..99


def test_book_snapshot_changes_break_and_snapshot_rows():
    ev = Events()
    p = ev.pipeline(depth_levels=2, book_snapshot_every_s=60)
    ch = "book.BTC-PERPETUAL.100ms"
    p.handle(ch, {"type": "snapshot", "timestamp": T0, "instrument_name": "BTC-PERPETUAL", "change_id": 1,
                  "bids": [["new", 100.0, 1.0], ["new", 99.0, 2.0], ["new", 98.0, 3.0]],
                  "asks": [["new", 101.0, 4.0]]})
    p.handle(ch, {"type": "change", "timestamp": T0 + 1000, "instrument_name": "BTC-PERPETUAL", "change_id": 2,
                  "prev_change_id": 1, "bids": [["delete", 100.0, 0.0]], "asks": []})
    (snap,) = ev.rows                                           # one row per minute of exchange time
    assert isinstance(snap, R.BookDepth) and not isinstance(snap, R.OptionBookDepth)
    assert (snap.bid_prices, snap.ask_prices, snap.best_bid_price) == ([100.0, 99.0], [101.0], 100.0)
    p.handle(ch, {"type": "change", "timestamp": T0 + 61_000, "instrument_name": "BTC-PERPETUAL", "change_id": 3,
                  "prev_change_id": 2, "bids": [], "asks": []})
    assert ev.rows[-1].bid_prices == [99.0, 98.0] and ev.rows[-1].change_id == 3
    p.handle(ch, {"type": "change", "timestamp": T0 + 62_000, "instrument_name": "BTC-PERPETUAL", "change_id": 9,
                  "prev_change_id": 7, "bids": [], "asks": []})
    (channel, step), = ev.breaks
    assert channel == ch and step.status == BookStatus.RESUBSCRIBE and p.counts["book_breaks"] == 1
    p.handle(ch, {"type": "change", "timestamp": T0 + 63_000, "instrument_name": "BTC-PERPETUAL", "change_id": 10,
                  "prev_change_id": 9, "bids": [], "asks": []})
    assert len(ev.breaks) == 1 and p.counts["book_dropped"] == 1   # waiting for the fresh snapshot


def test_bad_messages_are_counted_and_reported_once_per_reason_and_never_raise():
    ev = Events()
    p = ev.pipeline()
    for _ in range(3):
        p.handle(f"ticker.{OPT}.100ms", {"instrument_name": OPT})          # no timestamp
        p.handle("nonsense.x", {})
    p.handle("trades.option.BTC.100ms", [trade(1, T0), {"trade_seq": "x"}])
    assert sum(p.bad.values()) == 7 and len(ev.rows) == 1
    assert len(ev.bad) == len(p.bad) == 3 and len({r for r, _ in ev.bad}) == 3


def test_instrument_states_reach_on_state():
    ev = Events()
    p = ev.pipeline()
    p.handle("instrument.state.option.BTC", {"instrument_name": OPT, "state": "settled", "timestamp": T0})
    (st,) = ev.states
    assert (st.instrument, st.state) == (OPT, "settled")
