"""Subscription channels: parse a channel name, and build one notification's ``data`` for it.

A ``Chan`` is one active channel (shared by all its subscribers); it carries what was last published,
so a book channel's ``prev_change_id`` chains and a late subscriber gets a snapshot that chains too.
"""

from __future__ import annotations

from collector.sim import views
from collector.sim.book import diff_side
from collector.sim.market import Market, funding_rate

INTERVALS = ("raw", "100ms", "agg2")
KINDS = ("future", "option", "spot", "combo", "any")
BTC_GROUPS = {"none", "1", "2", "5", "10"}
ETH_GROUPS = {"none", "5", "10", "25", "100", "250"}
PERIODIC = {"ticker", "quote", "book", "grouped", "index", "perpetual", "markprice"}


class RawRefused(Exception):
    """A ``.raw`` channel asked for on an unauthenticated connection."""


class Chan:
    __slots__ = ("name", "kind", "inst", "cur", "arg", "subs", "bids", "asks", "change_id", "count")

    def __init__(self, name: str, kind: str, inst: str | None = None, cur: str | None = None, arg=None) -> None:
        self.name = name
        self.kind = kind          # ticker|quote|trades|trades_kind|book|grouped|index|perpetual|markprice|state|platform
        self.inst = inst
        self.cur = cur
        self.arg = arg
        self.subs: set = set()
        self.bids: dict | None = None
        self.asks: dict | None = None
        self.change_id = 0
        self.count = 0


def parse(name: str, m: Market) -> Chan | None:
    """A Chan for a valid public channel name, None if the name is unknown or its instrument is not
    listed; raises RawRefused for ``.raw``."""
    parts = name.split(".")
    head, n = parts[0], len(parts)
    if parts[-1] == "raw" and head in ("ticker", "trades", "book", "perpetual"):
        raise RawRefused(name)
    curs = m.index_names()   # btc_usd, sol_usdc, ...
    if head in ("ticker", "perpetual") and n == 3 and parts[2] in INTERVALS:
        inst = m.live.get(parts[1])
        if inst is None or (head == "perpetual" and not inst.perp):
            return None
        return Chan(name, head, inst.name, inst.cur)
    if head == "quote" and n == 2 and parts[1] in m.live:
        return Chan(name, "quote", parts[1], m.live[parts[1]].cur)
    if head == "trades" and n == 3 and parts[2] in INTERVALS and parts[1] in m.live:
        return Chan(name, "trades", parts[1], m.live[parts[1]].cur)
    if head == "trades" and n == 4 and parts[1] in KINDS and parts[3] in INTERVALS:
        if parts[2] in m.settlements or parts[2] == "any":   # trades.option.USDC.100ms, not ...SOL...
            return Chan(name, "trades_kind", None, parts[2], parts[1])
        return None
    if head == "book" and n == 3 and parts[2] in INTERVALS and parts[1] in m.live:
        return Chan(name, "book", parts[1], m.live[parts[1]].cur)
    if head == "book" and n == 5 and parts[4] in INTERVALS and parts[1] in m.live:
        inst = m.live[parts[1]]
        group, depth = parts[2], parts[3]
        groups = BTC_GROUPS if inst.cur == "BTC" else ETH_GROUPS
        if group not in groups or depth not in ("1", "10", "20"):
            return None
        size = None if group == "none" else float(group) / (100 if inst.cur != "BTC" else 1)
        return Chan(name, "grouped", inst.name, inst.cur, (size, int(depth)))
    if head == "deribit_price_index" and n == 2 and parts[1] in curs:
        return Chan(name, "index", None, curs[parts[1]], parts[1])
    if head == "markprice" and n == 3 and parts[1] == "options" and parts[2] in curs:
        return Chan(name, "markprice", None, curs[parts[2]], parts[2])
    if head == "instrument" and n == 4 and parts[1] == "state" and parts[2] in KINDS:
        if parts[3] in m.settlements or parts[3] == "any":
            return Chan(name, "state", None, parts[3], parts[2])
        return None
    if name in ("platform_state", "platform_state.public_methods_state"):
        return Chan(name, "platform")
    return None


def book_snapshot(ch: Chan, m: Market) -> dict:
    """The full book as the channel last published it (initialising the channel if new)."""
    assert ch.inst is not None  # a book channel
    inst = m.live[ch.inst]
    if ch.bids is None:
        m.touch_book(inst, jitter=False)
        ch.bids, ch.asks, ch.change_id = dict(inst.book.bids), dict(inst.book.asks), inst.book.change_id
    assert ch.asks is not None  # set with ch.bids
    bids = sorted(ch.bids.items(), key=lambda kv: -kv[0])
    asks = sorted(ch.asks.items())
    return {"type": "snapshot", "timestamp": m.now, "instrument_name": ch.inst, "change_id": ch.change_id,
            "bids": [["new", p, a] for p, a in bids], "asks": [["new", p, a] for p, a in asks]}


def build(ch: Chan, m: Market) -> dict | list | None:
    """One notification's data for a periodic channel, or None when there is nothing to send."""
    kind = ch.kind
    if kind == "index":
        assert ch.cur is not None
        return {"index_name": ch.arg, "price": m.cur[ch.cur].px(m.cur[ch.cur].index), "timestamp": m.now}
    if kind == "markprice":
        out = []
        for option in m.live.values():
            if option.cur == ch.cur and option.kind == "option":
                mark = m.price(option)
                out.append({"timestamp": m.now, "mark_price": mark, "iv": round(option.iv / 100, 4),
                            "instrument_name": option.name})
        return out
    inst = m.live.get(ch.inst) if ch.inst is not None else None
    if inst is None:
        return None
    if kind == "ticker":
        m.touch_book(inst, jitter=m.rng.random() < 0.5)
        return views.ticker(m, inst)
    if kind == "quote":
        m.touch_book(inst)
        return views.quote(m, inst)
    if kind == "perpetual":
        cs = m.cur[inst.cur]
        return {"interest": funding_rate(cs.premium), "timestamp": m.now, "index_price": cs.px(cs.index)}
    if kind == "grouped":
        book = m.touch_book(inst)
        bids, asks = book.grouped(*ch.arg)
        return {"timestamp": m.now, "instrument_name": inst.name, "change_id": book.change_id,
                "bids": bids, "asks": asks}
    if kind == "book":
        if ch.bids is None:
            return book_snapshot(ch, m)
        book = m.touch_book(inst)
        assert ch.asks is not None  # set with ch.bids
        bids, asks = diff_side(ch.bids, book.bids), diff_side(ch.asks, book.asks)
        if not bids and not asks:
            return None
        data = {"type": "change", "timestamp": m.now, "prev_change_id": ch.change_id,
                "instrument_name": inst.name, "change_id": book.change_id, "bids": bids, "asks": asks}
        ch.bids, ch.asks, ch.change_id = dict(book.bids), dict(book.asks), book.change_id
        return data
    return None
