"""Trade generation for the Market: Poisson arrivals per real second, taker trades against the book,
contiguous ``trade_seq`` per instrument, per-currency ``trade_id``s, 24 h stats buckets, bounded history.
A mixin so the Market keeps one state object; it relies on the Market's ``rng``, ``cur``, ``live``,
``price``, ``touch_book``, ``history`` and ``cur_trades``."""

from __future__ import annotations

import collections
import math
import random
from typing import TYPE_CHECKING

from collector.sim.book import round_tick

if TYPE_CHECKING:
    from collector.sim.book import Book
    from collector.sim.market import CurState, Inst

HOUR_MS = 3_600_000


class TradeFlow:
    # what the mixin relies on, set by the Market (annotations only: no class attributes)
    rng: random.Random
    cur: dict[str, CurState]
    live: dict[str, Inst]
    trade_rate: float
    history: int
    cur_trades: dict[str, collections.deque[dict]]
    trade_ids: dict[str, int]
    _pools: dict[str, tuple[list, list, list]] | None

    if TYPE_CHECKING:
        def price(self, inst: Inst) -> float: ...

        def touch_book(self, inst: Inst, jitter: bool = True) -> Book: ...

    # ---- trades --------------------------------------------------------------------------------
    def _pool(self, c: str) -> tuple[list, list, list]:
        if self._pools is None:
            pools: dict[str, tuple[list, list, list]] = {k: ([], [], []) for k in self.cur}
            for inst in self.live.values():
                p = pools[inst.cur]
                (p[0] if inst.perp else p[1] if inst.kind == "future" else p[2]).append(inst)
            self._pools = pools
        return self._pools[c]

    def _count(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, int(round(self.rng.gauss(lam, math.sqrt(lam)))))
        n, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= self.rng.random()
            if p <= limit:
                return n
            n += 1

    def _trades(self, real_dt: float, t0: int, t1: int) -> list[dict]:
        if t1 <= t0:  # the clock is paused (or has not moved): no trades in no time
            return []
        n = self._count(self.trade_rate * max(real_dt, 0.0))
        if n == 0:
            return []
        rng = self.rng
        stamps = sorted(rng.randint(t0 + 1, max(t0 + 1, t1)) for _ in range(n))
        curs = list(self.cur)
        out = []
        for ts in stamps:
            c = rng.choice(curs)
            perps, futs, opts = self._pool(c)
            r = rng.random()
            pool = perps if r < 0.3 else futs if r < 0.45 else opts
            if not pool:
                pool = perps or futs or opts
            if not pool:
                continue
            out.append(self._execute(rng.choice(pool), ts))
        return out

    def _execute(self, inst: Inst, ts: int) -> dict:
        cs = self.cur[inst.cur]
        rng = self.rng
        mark = self.price(inst)
        book = self.touch_book(inst, jitter=False)
        is_buy = rng.random() < 0.5
        amount = round(inst.lot * rng.randint(1, 30), 8)
        price = book.take(is_buy, amount) or max(round_tick(mark, inst.tick), inst.tick)
        if inst.last is not None and price != inst.last:
            inst.up = price > inst.last
            tick_dir = 0 if inst.up else 2
        else:
            tick_dir = 1 if inst.up else 3
        inst.last = price
        inst.seq += 1
        inst.total += 1
        if inst.settle == inst.cur:   # unique per currency=: BTC "48077291", ETH "ETH-2696055"
            cs.trade_id += 1
            tid = str(cs.trade_id) if inst.cur == "BTC" else f"{inst.cur}-{cs.trade_id}"
        else:                         # every linear base shares USDC's: "USDC-2436803"
            self.trade_ids[inst.settle] += 1
            tid = f"{inst.settle}-{self.trade_ids[inst.settle]}"
        trade = {
            "trade_seq": inst.seq,
            "trade_id": tid,
            "timestamp": ts,
            "tick_direction": tick_dir,
            "price": price,
            "mark_price": mark,
            "instrument_name": inst.name,
            "index_price": cs.px(cs.index),
            "direction": "buy" if is_buy else "sell",
            "amount": amount,
            "contracts": round(amount / inst.obj["contract_size"], 8),
        }
        if inst.kind == "option":
            trade["iv"] = inst.iv
        elif inst.perp and amount >= 29.5 * inst.lot:   # the largest now and then: a liquidation (M|T|MT)
            trade["liquidation"] = "T" if is_buy else "M"
        inst.oi = max(inst.lot, inst.oi + (amount if rng.random() < 0.55 else -amount))
        inst.trades.append(trade)
        if len(inst.trades) > self.history:
            inst.trades.popleft()
        self.cur_trades[inst.cur].append(trade)
        self._bucket(inst, trade)
        return trade

    def _bucket(self, inst: Inst, t: dict) -> None:
        key = t["timestamp"] // HOUR_MS
        price, amount = t["price"], t["amount"]
        if inst.linear:   # amounts in the coin, prices in USDC
            vol, usd, notional = amount, amount * price, amount * price
        elif inst.kind == "option":
            vol, usd, notional = amount, amount * price * t["index_price"], amount * price
        else:
            vol, usd, notional = amount / price, amount, amount
        b = inst.buckets.get(key)
        if b is None:
            inst.buckets[key] = [vol, usd, price, price, price, notional]
            for old in [k for k in inst.buckets if k < key - 24]:
                del inst.buckets[old]
        else:
            b[0] += vol
            b[1] += usd
            b[2] = max(b[2], price)
            b[3] = min(b[3], price)
            b[5] += notional
