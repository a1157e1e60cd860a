"""One instrument's order book: price levels that follow a mark price, with a ``change_id`` chain.

Pure state machine: callers mutate it (``recentre``, ``jitter``, ``take``) and ask for snapshots or
for the diff between a published state and now, in Deribit's ``[action, price, amount]`` form.
``change_id`` grows by a random step on every mutation (never +1 only, like the real feed).
"""

from __future__ import annotations

import math
import random

LEVELS = 10


def round_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 10)


class Book:
    __slots__ = ("tick", "lot", "bids", "asks", "change_id", "rng")

    def __init__(self, tick: float, lot: float, change_id: int, rng: random.Random) -> None:
        self.tick = tick
        self.lot = lot
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.change_id = change_id
        self.rng = rng

    def _bump(self) -> None:
        self.change_id += self.rng.randint(1, 40)

    def _size(self) -> float:
        return round(self.lot * self.rng.randint(1, 60), 8)

    def best_bid(self) -> tuple[float, float]:
        if not self.bids:
            return 0.0, 0.0
        p = max(self.bids)
        return p, self.bids[p]

    def best_ask(self) -> tuple[float, float]:
        if not self.asks:
            return 0.0, 0.0
        p = min(self.asks)
        return p, self.asks[p]

    def recentre(self, mark: float, half_spread: float) -> bool:
        """Make the book straddle ``mark``: drop levels on the wrong side, refill to LEVELS each side.
        Returns True if anything changed (the change_id then moved)."""
        tick = self.tick
        top_bid = round_tick(mark - half_spread, tick)
        top_ask = round_tick(mark + half_spread, tick)
        if top_ask <= top_bid:
            top_ask = round_tick(top_bid + tick, tick)
        changed = False
        for p in [p for p in self.bids if p > top_bid or p < top_bid - (LEVELS * 3) * tick]:
            del self.bids[p]
            changed = True
        for p in [p for p in self.asks if p < top_ask or p > top_ask + (LEVELS * 3) * tick]:
            del self.asks[p]
            changed = True
        i = 0
        while len(self.bids) < LEVELS and i < LEVELS * 3:
            p = round_tick(top_bid - i * tick, tick)
            if p <= 0:
                break
            if p not in self.bids and (i == 0 or self.rng.random() < 0.6):
                self.bids[p] = self._size()
                changed = True
            i += 1
        i = 0
        while len(self.asks) < LEVELS and i < LEVELS * 3:
            p = round_tick(top_ask + i * tick, tick)
            if p not in self.asks and (i == 0 or self.rng.random() < 0.6):
                self.asks[p] = self._size()
                changed = True
            i += 1
        if changed:
            self._bump()
        return changed

    def jitter(self) -> None:
        """A small random change: one level's amount moves, appears or disappears."""
        side = self.bids if self.rng.random() < 0.5 else self.asks
        if not side:
            return
        p = self.rng.choice(list(side))
        if self.rng.random() < 0.15 and len(side) > 2:
            del side[p]
        else:
            side[p] = self._size()
        self._bump()

    def take(self, is_buy: bool, amount: float) -> float:
        """A taker trade of ``amount`` against the best level; returns the traded price (0 if empty)."""
        side = self.asks if is_buy else self.bids
        if not side:
            return 0.0
        p = min(side) if is_buy else max(side)
        left = round(side[p] - amount, 8)
        if left <= 0:
            del side[p]
        else:
            side[p] = left
        self._bump()
        return p

    def snapshot(self, depth: int | None = None) -> tuple[list, list]:
        bids = sorted(self.bids.items(), key=lambda kv: -kv[0])
        asks = sorted(self.asks.items())
        if depth is not None:
            bids, asks = bids[:depth], asks[:depth]
        return [[p, a] for p, a in bids], [[p, a] for p, a in asks]

    def grouped(self, group: float | None, depth: int) -> tuple[list, list]:
        if not group:
            return self.snapshot(depth)
        gb: dict[float, float] = {}
        ga: dict[float, float] = {}
        for p, a in self.bids.items():
            k = round(math.floor(p / group + 1e-9) * group, 10)
            gb[k] = gb.get(k, 0.0) + a
        for p, a in self.asks.items():
            k = round(math.ceil(p / group - 1e-9) * group, 10)
            ga[k] = ga.get(k, 0.0) + a
        bids = sorted(gb.items(), key=lambda kv: -kv[0])[:depth]
        asks = sorted(ga.items())[:depth]
        return [[p, round(a, 8)] for p, a in bids], [[p, round(a, 8)] for p, a in asks]


def diff_side(old: dict[float, float], new: dict[float, float]) -> list:
    """Deribit book-change entries turning ``old`` into ``new``."""
    out = []
    for p, a in new.items():
        was = old.get(p)
        if was is None:
            out.append(["new", p, a])
        elif was != a:
            out.append(["change", p, a])
    for p in old:
        if p not in new:
            out.append(["delete", p, 0.0])
    return out
