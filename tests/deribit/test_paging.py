"""Trade paging: by time (a page boundary inside a millisecond gives its trades once; a page all of one
millisecond steps past it) and by sequence, against a scripted client that answers like Deribit."""

from __future__ import annotations

import pytest

from collector.deribit import paging
from collector.deribit.frames import ParseError


def _trade(tid: int, ts: int, seq: int | None = None, name: str = "BTC-27DEC26-100000-C") -> dict:
    return {"trade_id": str(tid), "timestamp": ts, "trade_seq": tid if seq is None else seq, "instrument_name": name}


class History:
    """Answers both trade methods from one list of trades, ``count`` at a time, like Deribit: oldest first,
    ``has_more`` when the range held more than came back."""

    def __init__(self, trades: list[dict], count: int | None = None) -> None:
        self.trades = trades
        self.count = count
        self.asked: list[tuple] = []

    def _answer(self, rows: list[dict], count: int) -> dict:
        n = self.count or count
        return {"trades": rows[:n], "has_more": len(rows) > n}

    def get_last_trades_by_currency_and_time(self, currency, start, end, kind=None, count=None, sorting=None):
        self.asked.append((currency, start, end, kind, count, sorting))
        return self._answer([t for t in self.trades if start <= t["timestamp"] <= end], count)

    def get_last_trades_by_instrument(self, instrument, start_seq=None, end_seq=None, count=None, sorting=None):
        self.asked.append((instrument, start_seq, end_seq, count, sorting))
        return self._answer([t for t in self.trades if start_seq <= t["trade_seq"] <= end_seq], count)


def _ids(pages) -> list[str]:
    return [t["trade_id"] for page in pages for t in page]


def test_by_time_gives_each_trade_once_across_a_millisecond_boundary():
    trades = [_trade(i, 1000 + i // 3) for i in range(10)]   # three trades per millisecond
    client = History(trades, count=4)
    assert _ids(paging.trades_by_time(client, "BTC", 1000, 2000)) == [str(i) for i in range(10)]
    assert client.asked[0] == ("BTC", 1000, 2000, "option", 1000, "asc")
    assert [a[1] for a in client.asked] == [1000, 1001, 1002]   # each page starts at the last ms of the one before


def test_by_time_steps_past_a_page_all_of_one_millisecond():
    trades = [_trade(i, 1000) for i in range(5)] + [_trade(5, 1001)]
    client = History(trades, count=3)
    assert _ids(paging.trades_by_time(client, "ETH", 1000, 1001, kind="future")) == ["0", "1", "2", "5"]
    assert [a[1] for a in client.asked] == [1000, 1001]


def test_by_time_stops_at_max_pages_and_on_an_empty_page():
    client = History([_trade(i, 1000 + i) for i in range(10)], count=2)
    assert _ids(paging.trades_by_time(client, "BTC", 1000, 2000, max_pages=2)) == ["0", "1", "2"]
    assert list(paging.trades_by_time(History([]), "BTC", 0, 1)) == [[]]


def test_by_time_refuses_an_answer_without_trades():
    class Odd:
        def get_last_trades_by_currency_and_time(self, *a, **kw):
            return {"result": []}

    with pytest.raises(ParseError):
        list(paging.trades_by_time(Odd(), "BTC", 0, 1))


def test_by_sequence_pages_until_the_last_seq():
    client = History([_trade(100 + i, 5000 + i) for i in range(25)], count=10)
    pages = list(paging.trades_by_sequence(client, "BTC-27DEC26-100000-C", 103, 121))
    assert [len(p) for p in pages] == [10, 9]
    assert [a[1] for a in client.asked] == [103, 113]
    assert list(paging.trades_by_sequence(History([]), "BTC-PERPETUAL", 1, 5)) == []
