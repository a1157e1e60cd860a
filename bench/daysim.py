"""A simulated day of the option chains as the collector would store it: not a benchmark itself.

The simulator's own model drives it (``collector.sim``: the index walk, the listing calendar with its
08:00 UTC expiries and new listings, Black-76 marks/IVs/greeks on a smile, books that follow the mark,
taker trades with contiguous ``trade_seq``), and the rows are made by the collector's own parsers from
the simulator's Deribit-shaped objects (``views.ticker`` -> ``parse.quote_from_ticker``, a trade dict ->
``parse.trade``, ``views.order_book`` -> ``parse_rest.book_depth``), so every column is filled as live.

What the simulator does not say is how often a real quote changes; that is set here. Each option
changes its best bid/ask as a Poisson process whose rate is weighted towards the money and towards short
expiries (``weight``), scaled so that the whole chain of a currency makes ``quotes_per_day`` rows (the
user's plan: ~20M BTC, ~15M ETH). Each row is a change of the top of the book (price or amount), as
the collector's change filter keeps them. ``fraction`` keeps a deterministic subset of the instruments
(by a hash of the name: listings during the day are sampled alike) at their full per-instrument rate,
so a day of 1/8 of the chain has the real row density per instrument (what TimescaleDB's
per-instrument compression sees) at 1/8 of the volume. Option trades (``trades_per_day`` for the whole
chain of a currency) and depth snapshots (every ``depth_every_s`` of every kept live option, top
``depth_levels``; the simulator's books hold up to 10 levels a side) are sampled the same way.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from collector import records as R
from collector.deribit import parse
from collector.deribit.instruments import is_option
from collector.deribit.parse_rest import book_depth
from collector.sim import views
from collector.sim.market import Inst, Market

# strikes per expiry: ~800 BTC and ~710 options ETH live (the simulator's calendar: ~12 expiries)
STRIKES = {"BTC": 34, "ETH": 30}
PLAN_QUOTES_PER_DAY = {"BTC": 20e6, "ETH": 15e6}
OPTION_TRADE_SHARE = 0.55  # of the simulator's trades (perpetual 0.3, futures 0.15)


def weight(m: Market, inst: Inst) -> float:
    """Relative quote activity: near the money and short-dated options re-quote most."""
    m.price(inst)
    t = max(m.years_to(inst), 1 / 8760)
    vol = max(inst.iv, 1.0) / 100
    k = math.log(inst.strike / inst.fwd) / (vol * math.sqrt(t)) if inst.fwd else 0.0
    return (0.15 + math.exp(-0.5 * k * k)) * (1.0 + 2.0 * math.exp(-12.0 * t))


def kept(name: str, fraction: float) -> bool:
    return fraction >= 1.0 or zlib.crc32(name.encode()) % 10_000 < fraction * 10_000


@dataclass
class DaySpec:
    day: dt.date
    currencies: tuple[str, ...] = ("BTC", "ETH")
    fraction: float = 1.0
    quotes_per_day: dict[str, float] = field(default_factory=lambda: dict(PLAN_QUOTES_PER_DAY))
    trades_per_day: float = 40_000.0      # option trades per currency per day (whole chain)
    depth_every_s: int = 300
    depth_levels: int = 20
    start_s: int = 0                      # seconds after 00:00 UTC of ``day``
    end_s: int = 86_400
    seed: int = 7


class _Chain:
    """One currency: its Market, the per-instrument quote clocks, the last top of book emitted."""

    def __init__(self, cur: str, spec: DaySpec, start_ms: int, seed: int) -> None:
        self.cur = cur
        self.spec = spec
        rate = spec.trades_per_day / 86_400 / OPTION_TRADE_SHARE
        self.m = Market([cur], seed, start_ms, strikes=STRIKES.get(cur, 24), trade_rate=rate)
        self.rng = random.Random(seed * 31 + 1)
        self.last_top: dict[str, tuple] = {}
        self.scheduled: set[str] = set()
        self.per_weight = spec.quotes_per_day[cur] / 86_400 / sum(weight(self.m, i) for i in self.options())  # rows/s per weight
        self.lam: dict[str, float] = {}

    def options(self) -> list[Inst]:
        return [i for i in self.m.live.values() if i.kind == "option"]

    def new_clocks(self, now_ms: int) -> list[tuple[int, str, str]]:
        """First quote times of kept options not scheduled yet (all at the start, listings later)."""
        out = []
        for inst in self.options():
            if inst.name in self.scheduled or not kept(inst.name, self.spec.fraction):
                continue
            self.scheduled.add(inst.name)
            self.lam[inst.name] = weight(self.m, inst) * self.per_weight
            out.append((now_ms + self.gap(inst.name), self.cur, inst.name))
        return out

    def gap(self, name: str) -> int:
        return max(1, round(1000 * self.rng.expovariate(self.lam[name])))

    def advance(self, now_ms: int) -> list[R.OptionTrade]:
        m = self.m
        trades = m.advance(now_ms, max(0, now_ms - m.now) / 1000)
        return [parse.trade(t) for t in trades
                if is_option(t["instrument_name"]) and kept(t["instrument_name"], self.spec.fraction)]

    def quote(self, inst: Inst) -> R.OptionQuote:
        book = self.m.touch_book(inst)
        top = (*book.best_bid(), *book.best_ask())
        if top == self.last_top.get(inst.name):  # the event is a change of the top: re-size one side
            side = book.bids if (self.rng.random() < 0.5 and book.bids) or not book.asks else book.asks
            if side:
                best = max(side) if side is book.bids else min(side)
                side[best] = round(book.lot * self.rng.randint(1, 60), 8)
            top = (*book.best_bid(), *book.best_ask())
        self.last_top[inst.name] = top
        return parse.quote_from_ticker(views.ticker(self.m, inst))

    def depth(self) -> list[R.OptionBookDepth]:
        return [book_depth(views.order_book(self.m, i, self.spec.depth_levels), self.spec.depth_levels, option=True)
                for i in self.options() if kept(i.name, self.spec.fraction)]


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)


def simulate(spec: DaySpec, batch_rows: int = 5000) -> Iterator[list[R.Record]]:
    """Batches of one currency's rows (quotes, trades, depth mixed, as one `collector ws` process and
    the depth job write them), in time order, ``batch_rows`` rows or fewer."""
    t0 = day_start_ms(spec.day)
    start, end = t0 + 1000 * spec.start_s, t0 + 1000 * spec.end_s
    chains = {c: _Chain(c, spec, start, spec.seed + k) for k, c in enumerate(spec.currencies)}
    heap: list[tuple[int, str, str]] = []
    for ch in chains.values():
        heap.extend(ch.new_clocks(start))
    heapq.heapify(heap)
    buf: dict[str, list[R.Record]] = {c: [] for c in chains}
    next_depth = start - start % (1000 * spec.depth_every_s) + 1000 * spec.depth_every_s
    known = {c: len(ch.m.known) for c, ch in chains.items()}

    def add(cur: str, rows: list[R.Record]) -> Iterator[list[R.Record]]:
        b = buf[cur]
        b.extend(rows)
        while len(b) >= batch_rows:
            yield b[:batch_rows]
            del b[:batch_rows]

    while heap and heap[0][0] < end:
        ts, cur, name = heapq.heappop(heap)
        while next_depth <= ts:
            for c, ch in chains.items():
                yield from add(c, ch.advance(next_depth))
                yield from add(c, ch.depth())
            next_depth += 1000 * spec.depth_every_s
        ch = chains[cur]
        yield from add(cur, ch.advance(ts))
        if len(ch.m.known) != known[cur]:  # listings (after the 08:00 expiry): their clocks start now
            known[cur] = len(ch.m.known)
            for item in ch.new_clocks(ts):
                heapq.heappush(heap, item)
        inst = ch.m.live.get(name)
        if inst is None:  # expired
            continue
        yield from add(cur, [ch.quote(inst)])
        heapq.heappush(heap, (ts + ch.gap(name), cur, name))
    for b in buf.values():
        if b:
            yield list(b)


def kept_options(spec: DaySpec) -> dict[str, tuple[int, int]]:
    """(kept, all) live options per currency at the start of the day."""
    start = day_start_ms(spec.day) + 1000 * spec.start_s
    out = {}
    for k, c in enumerate(spec.currencies):
        opts = _Chain(c, spec, start, spec.seed + k).options()
        out[c] = (sum(kept(i.name, spec.fraction) for i in opts), len(opts))
    return out
