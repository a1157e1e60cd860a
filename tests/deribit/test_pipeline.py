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
    p.handle("ticker.BTC-27DEC26.100ms", ticker(T0, 90000.0, 90001.0, inst="BTC-27DEC26"))  # a dated future
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


PERP = "BTC-PERPETUAL"


def perp_ticker(ts: int, bid: float, bid_amount: float = 5000.0, mark: float = 90000.5, funding: float = 1e-5) -> dict:
    # the shape of a real perpetual ticker (tests/data/deribit/ws_ticker_docs.json)
    return {"timestamp": ts, "instrument_name": PERP, "state": "open", "best_bid_price": bid,
            "best_bid_amount": bid_amount, "best_ask_price": bid + 0.5, "best_ask_amount": 100.0,
            "mark_price": mark, "index_price": 90001.0, "current_funding": funding, "funding_8h": 2e-5,
            "open_interest": 502097590, "interest_value": 1.7, "estimated_delivery_price": 90001.0,
            "settlement_price": 89000.0, "stats": {"volume": 7871.0, "volume_usd": 284061480}}


def test_a_perpetual_quote_row_on_every_change_of_its_book_top_with_mark_index_funding():
    ev = Events()
    p = ev.pipeline()
    ch = f"ticker.{PERP}.100ms"
    p.handle(ch, perp_ticker(T0, 90000.0))
    p.handle(ch, perp_ticker(T0 + 100, 90000.0, mark=90000.7, funding=2e-5))      # only mark/funding moved
    p.handle(ch, msgspec.Raw(msgspec.json.encode(perp_ticker(T0 + 200, 90000.0, bid_amount=4000.0))))  # a size
    p.handle(ch, msgspec.Raw(msgspec.json.encode(perp_ticker(T0 + 300, 90000.0, bid_amount=4000.0))))  # same
    p.handle(ch, perp_ticker(T0 + 400, 90001.0))                                  # a price
    assert all(type(r) is R.PerpetualQuote for r in ev.rows)
    tops = [(r.best_bid_price, r.best_bid_amount) for r in ev.rows]
    assert tops == [(90000.0, 5000.0), (90000.0, 4000.0), (90001.0, 5000.0)]
    assert p.counts["perpetual_quotes"] == 3 and p.counts["perpetual_quotes_unchanged"] == 2
    assert p.counts["quotes"] == 0 and not ev.bad
    q = ev.rows[0]
    assert (q.mark_price, q.index_price, q.funding_rate, q.funding_8h, q.open_interest) == (
        90000.5, 90001.0, 1e-5, 2e-5, 502097590.0)
    assert R.table_of(q) == "perpetuals_quotes"
    other = Events()
    other.pipeline().handle(ch, perp_ticker(T0 + 200, 90000.0, bid_amount=4000.0))  # the dict path, same row
    assert other.rows == [ev.rows[1]]


def test_perpetual_trades_are_checked_by_seq_and_become_perpetuals_trades():
    ev = Events()
    p = ev.pipeline()
    p.seed_trades({PERP: 500})
    ch = f"trades.{PERP}.100ms"
    p.handle(ch, [trade(501, T0, PERP), trade(502, T0 + 1, PERP), trade(505, T0 + 3, PERP)])
    p.handle(ch, [trade(502, T0 + 1, PERP)])                                       # a repeat
    p.handle("trades.future.BTC.100ms", [trade(7, T0 + 4, "BTC-27DEC26")])          # a dated future: not kept
    assert [(type(r), r.trade_seq) for r in ev.rows] == [(R.PerpetualTrade, 501), (R.PerpetualTrade, 502),
                                                         (R.PerpetualTrade, 505)]
    assert R.table_of(ev.rows[0]) == "perpetuals_trades" and ev.rows[0].trade_id == "t501"
    (gap, last_at, seen_at), = ev.gaps
    assert gap == TradeGap(PERP, 503, 504)
    assert last_at == datetime.fromtimestamp((T0 + 1) / 1000, timezone.utc)
    assert p.counts["perpetual_trades"] == 3 and p.counts["trade_duplicates"] == 1
    assert p.counts["trades"] == 0 and p.counts["trade_not_option"] == 1
    assert p.advance_trades(PERP, [503, 504]) == 505
