"""trade_seq and change_id continuity, including the real-traffic oddities of API.md §6.1."""

from __future__ import annotations

import pytest

from collector.deribit import parse as P
from collector.deribit.sequence import BookChain, BookStatus, TradeDuplicate, TradeGap, TradeSequence

A, B = "BTC-27DEC26-100000-C", "ETH-27DEC26-4000-P"


def test_first_seq_is_baseline_then_contiguous():
    s = TradeSequence()
    assert [s.feed(A, n) for n in (100, 101, 102)] == [None, None, None]
    assert s.last(A) == 102


def test_gap_reported_as_missing_range():
    s = TradeSequence()
    s.feed(A, 7)
    g = s.feed(A, 10)
    assert g == TradeGap(A, 8, 9) and g.missing_count == 2
    assert s.feed(A, 11) is None


def test_duplicates_and_older_are_not_gaps():
    s = TradeSequence()
    for n in (5, 6, 7):
        s.feed(A, n)
    assert s.feed(A, 7) == TradeDuplicate(A, 7, 7)
    assert s.feed(A, 3) == TradeDuplicate(A, 3, 7)
    assert s.last(A) == 7


def test_instruments_are_independent_and_seeded():
    s = TradeSequence({A: 41})
    assert s.feed(A, 42) is None
    assert s.feed(B, 1000) is None  # unseeded: baseline
    s.seed(B, 2000)
    assert s.feed(B, 2003) == TradeGap(B, 2001, 2002)
    s.seed(B, 5)  # never moves backwards
    assert s.last(B) == 2003
    s.forget(A)
    assert s.last(A) is None


def test_seed_reports_what_a_restart_missed():
    s = TradeSequence()
    s.seed(A, 10)
    assert s.feed(A, 15) == TradeGap(A, 11, 14)


def test_real_trades_against_a_seeded_baseline(examples):
    [t] = P.trades(examples.data("ws_trades_kind_currency_docs"))  # trade_seq 2
    s = TradeSequence({t.instrument: 0})
    results = [s.feed(r.instrument, r.trade_seq) for r in (t, t)]
    assert results == [TradeGap(t.instrument, 1, 1), TradeDuplicate(t.instrument, 2, 2)]


# -- books ---------------------------------------------------------------------------------------------

def test_docs_snapshot_then_change(examples):
    c = BookChain()
    snap = examples.data("ws_book_docs", 0)
    change = examples.data("ws_book_docs", 1)
    assert c.feed(snap).status == BookStatus.SNAPSHOT
    step = c.feed(change)
    assert step.status == BookStatus.OK and c.last("BTC-PERPETUAL") == 297218


def test_real_change_chain_not_contiguous(examples):
    real = examples.data("ws_book_change_real_ccxt_usdc_perp")
    c = BookChain()
    c.feed({"type": "snapshot", "instrument_name": real["instrument_name"], "change_id": real["prev_change_id"],
            "timestamp": 1, "bids": [], "asks": []})
    assert c.feed(real).status == BookStatus.OK  # 1550724481 -> 1550724483: a jump of 2 is fine
    nxt = dict(real, prev_change_id=real["change_id"], change_id=real["change_id"] + 5643)
    assert c.feed(nxt).status == BookStatus.OK


def test_mismatch_asks_resubscribe_once_then_waits_for_snapshot():
    c = BookChain()
    c.feed({"type": "snapshot", "instrument_name": A, "change_id": 10})
    step = c.feed({"type": "change", "instrument_name": A, "change_id": 30, "prev_change_id": 20})
    assert step.status == BookStatus.RESUBSCRIBE and step.expected_prev == 10 and "20" in step.reason
    assert c.feed({"type": "change", "instrument_name": A, "change_id": 40, "prev_change_id": 30}).status == BookStatus.AWAITING
    assert c.feed({"type": "snapshot", "instrument_name": A, "change_id": 50}).status == BookStatus.SNAPSHOT
    assert c.feed({"type": "change", "instrument_name": A, "change_id": 51, "prev_change_id": 50}).status == BookStatus.OK


def test_change_before_snapshot_asks_resubscribe():
    c = BookChain()
    step = c.feed({"type": "change", "instrument_name": A, "change_id": 5, "prev_change_id": 4})
    assert step.status == BookStatus.RESUBSCRIBE


def test_2019_messages_without_type():
    c = BookChain()
    assert c.feed({"instrument_name": A, "change_id": 100, "bids": [], "asks": []}).status == BookStatus.SNAPSHOT
    assert c.feed({"instrument_name": A, "change_id": 103, "prev_change_id": 100}).status == BookStatus.OK
    assert c.feed({"instrument_name": A, "change_id": 110, "prev_change_id": 104}).status == BookStatus.RESUBSCRIBE


def test_prev_change_id_zero_and_snapshot_carrying_prev():
    c = BookChain()
    # ETH option 2021: first message a "change" with prev_change_id 0 -> treated as a snapshot
    assert c.feed({"type": "change", "instrument_name": B, "change_id": 7, "prev_change_id": 0}).status == BookStatus.SNAPSHOT
    assert c.feed({"type": "change", "instrument_name": B, "change_id": 9, "prev_change_id": 7}).status == BookStatus.OK
    # LINK_USDC-PERPETUAL 2022: a snapshot carrying prev_change_id 20 -> still a snapshot, no check
    assert c.feed({"type": "snapshot", "instrument_name": "LINK_USDC-PERPETUAL", "change_id": 21,
                   "prev_change_id": 20}).status == BookStatus.SNAPSHOT


def test_duplicate_change_and_grouped_snapshots(examples):
    c = BookChain()
    c.feed({"type": "snapshot", "instrument_name": A, "change_id": 1})
    ch = {"type": "change", "instrument_name": A, "change_id": 2, "prev_change_id": 1}
    assert c.feed(ch).status == BookStatus.OK
    assert c.feed(ch).status == BookStatus.DUPLICATE
    grouped = examples.data("ws_book_grouped_real")
    assert c.feed(grouped).status == BookStatus.SNAPSHOT
    assert c.feed(grouped).status == BookStatus.SNAPSHOT


def test_reset_and_malformed():
    c = BookChain()
    c.feed({"type": "snapshot", "instrument_name": A, "change_id": 1})
    c.reset_all()
    assert c.last(A) is None
    for bad in (None, [], {"instrument_name": A}, {"instrument_name": A, "change_id": "5"},
                {"change_id": 1}, {"instrument_name": A, "change_id": 2, "prev_change_id": "1"}):
        with pytest.raises(P.ParseError):
            c.feed(bad)


def test_advance_moves_the_baseline_only_over_a_contiguous_run():
    from collector.deribit.sequence import TradeSequence

    seq = TradeSequence({"A": 10})
    assert seq.advance("A", [13, 11, 12, 15]) == 13        # 14 is still missing: 15 does not count
    assert seq.feed("A", 16) == TradeGap("A", 14, 15)
    assert seq.advance("A", [3, 4]) == 16                  # older trades never move it back
    assert seq.advance("B", [7, 9]) == 9                    # no baseline: the newest fetched one
    assert seq.advance("C", []) is None
