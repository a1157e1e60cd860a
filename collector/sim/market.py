"""The simulated market: index walks, listings and expiries, marks, books and trades. No I/O.

Time is the simulated clock in ms. The index, the perpetual premium and funding move on a fixed grid of
simulated time (so a seed and a start time give the same path whatever the real tick timing); trades
arrive at ``trade_rate`` per real second and are recorded whether or not anybody listens.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import random

from collector.sim import pricing, universe
from collector.sim.book import Book
from collector.sim.trades import TradeFlow

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
GRID_STEPS_S = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)


class Inst:
    """One listed instrument and its live state."""

    __slots__ = ("name", "kind", "cur", "obj", "expiry", "day", "strike", "is_call", "perp", "tick", "lot",
                 "book", "seq", "last", "oi", "buckets", "trades", "total", "state", "delivery",
                 "mark_at", "mark", "greeks", "iv", "fwd", "skip_trades", "skip_book", "up", "seq0",
                 "settle", "linear")

    def __init__(self, obj: dict, day: dt.date | None, book: Book, seq: int, oi: float) -> None:
        self.obj = obj
        self.name = obj["instrument_name"]
        self.kind = obj["kind"]
        self.cur = obj["base_currency"]            # the base coin: BTC, SOL (the Market's key)
        self.settle = obj["settlement_currency"]   # the currency= it is listed under: BTC, USDC
        self.linear = obj.get("instrument_type") == "linear"   # prices in USDC, amounts in the coin
        self.expiry = obj["expiration_timestamp"]
        self.day = day
        self.strike = obj.get("strike")
        self.is_call = obj.get("option_type") == "call"
        self.perp = obj.get("settlement_period") == "perpetual"
        self.tick = obj["tick_size"]
        self.lot = obj["min_trade_amount"]
        self.book = book
        self.seq = seq               # last trade_seq used
        self.seq0 = seq              # trade_seq before the simulator's first trade
        self.last: float | None = None
        self.oi = oi
        self.buckets: dict[int, list] = {}  # hour -> [volume, volume_usd, high, low, first, notional]
        self.trades: collections.deque = collections.deque()
        self.total = 0               # trades generated (truth)
        self.state = "open"
        self.delivery: float | None = None
        self.mark_at = -1
        self.mark = 0.0
        self.greeks: dict | None = None
        self.iv = 0.0
        self.fwd = 0.0
        self.skip_trades = 0
        self.skip_book = 0
        self.up = True


class CurState:
    __slots__ = ("spec", "index", "prev_hour_index", "premium", "prem_sum", "prem_n", "basis", "base_vol",
                 "skew", "curv", "rng", "trade_id", "settle_index", "funding", "option_days", "interest")

    def __init__(self, spec: universe.CurrencySpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = random.Random(rng.random())
        self.index = round(spec.spot * (1 + rng.uniform(-0.1, 0.1)), spec.index_decimals)
        self.prev_hour_index = self.index
        self.premium = rng.uniform(-0.0005, 0.0008)
        self.prem_sum = 0.0
        self.prem_n = 0
        self.basis = rng.uniform(0.03, 0.08)
        self.base_vol = spec.vol * rng.uniform(0.9, 1.1)
        self.skew = rng.uniform(-0.12, -0.04)
        self.curv = rng.uniform(0.03, 0.07)
        self.trade_id = rng.randint(1_000_000, 90_000_000)
        self.settle_index = self.index
        self.funding: list[dict] = []
        self.option_days: set[dt.date] = set()
        self.interest = 0.0

    def px(self, value: float) -> float:
        """An index-like price as Deribit prints it: 2 decimals, 4 for a low-priced base (XRP 0.6231)."""
        return round(value, self.spec.index_decimals)


def funding_rate(premium: float) -> float:
    """Deribit's damper: max(0.025 %, P) + min(-0.025 %, P), capped at +-0.5 %."""
    rate = max(0.00025, premium) + min(-0.00025, premium)
    return max(-0.005, min(0.005, rate))


class Market(TradeFlow):
    def __init__(self, currencies: list[str], seed: int, start_ms: int, *, strikes: int = 16,
                 trade_rate: float = 20.0, history: int = 20000, speed: float = 1.0) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.strikes = strikes
        self.trade_rate = trade_rate
        self.history = history
        self.grid_ms = 1000 * next((s for s in GRID_STEPS_S if s >= speed / 360), 3600)
        self.now = start_ms
        self.grid_at = start_ms - start_ms % self.grid_ms
        currencies = universe.with_usdc_universe(currencies)   # SOL brings the USDC universe (and XRP)
        self.cur: dict[str, CurState] = {c: CurState(universe.currency_spec(c), self.rng) for c in currencies}
        self.usdc = any(cs.spec.linear for cs in self.cur.values())
        # the currency= values that list something (USDC also when nothing linear is simulated: Deribit
        # always answers it) and their trade_id counters ("USDC-2436803"; a seed of its own, so a BTC/ETH
        # market is the same with or without them)
        self.settlements = list(dict.fromkeys([cs.spec.settlement for cs in self.cur.values()] + ["USDC"]))
        self.trade_ids = {"USDC": random.Random(seed ^ 0x05DC).randint(1_000_000, 9_000_000)}
        self.live: dict[str, Inst] = {}
        self.expired: collections.OrderedDict[str, Inst] = collections.OrderedDict()
        self.known: set[str] = set()
        self.next_id = self.rng.randint(100_000, 300_000)
        self.events: list[tuple[str, str, dict]] = []   # (kind, currency= it is listed under, state data)
        self.cur_trades: dict[str, collections.deque[dict]] = {c: collections.deque(maxlen=history) for c in currencies}
        self.tick_no = 0
        self.clock_ms = lambda: self.now  # the server replaces this with the simulated wall clock
        self._pools: dict[str, tuple[list, list, list]] | None = None
        first = universe.expiry_ms(universe.first_expiry_day(start_ms))
        self.next_settle = first
        for c in currencies:
            self._backfill_funding(self.cur[c], start_ms)
            self._list(c, start_ms, initial=True)
        self.events.clear()

    # ---- clock ---------------------------------------------------------------------------------
    def advance(self, now_ms: int, real_dt: float) -> list[dict]:
        """Move the market to ``now_ms``; returns the trades generated meanwhile (oldest first)."""
        t0 = self.now
        while self.next_settle <= now_ms:
            self._walk(self.next_settle)
            self._settle(self.next_settle)
            self.next_settle += DAY_MS
        self._walk(now_ms)
        self.now = max(self.now, now_ms)
        self.tick_no += 1
        return self._trades(real_dt, t0, self.now)

    def _walk(self, t: int) -> None:
        step = self.grid_ms
        k = step / 1000.0
        while self.grid_at + step <= t:
            self.grid_at += step
            hour = self.grid_at % HOUR_MS == 0
            for cs in self.cur.values():
                g = cs.rng.gauss
                sig = cs.spec.vol * math.sqrt(k / 31_536_000)
                cs.index *= math.exp(sig * g(0.0, 1.0) - 0.5 * sig * sig)
                cs.premium = cs.premium * (1 - 0.001 * k) + 0.00003 * math.sqrt(k) * g(0.0, 1.0)
                cs.prem_sum += cs.premium
                cs.prem_n += 1
                cs.interest += funding_rate(cs.premium) * k / 28800
                if hour:
                    self._funding_hour(cs, self.grid_at)
        self.now = max(self.now, t)

    def _funding_hour(self, cs: CurState, t: int) -> None:
        avg = cs.prem_sum / cs.prem_n if cs.prem_n else cs.premium
        rate8 = funding_rate(avg)
        cs.funding.append({"timestamp": t, "index_price": cs.px(cs.index),
                           "prev_index_price": cs.px(cs.prev_hour_index),
                           "interest_8h": rate8, "interest_1h": rate8 / 8})
        cs.prev_hour_index = cs.index
        cs.prem_sum, cs.prem_n = 0.0, 0

    def _backfill_funding(self, cs: CurState, start_ms: int) -> None:
        """30 days of hourly funding before the start, from the same premium process (seeded)."""
        rng = random.Random(cs.rng.random())
        hours = 30 * 24
        first = start_ms - start_ms % HOUR_MS - hours * HOUR_MS
        idx, prem, rows = cs.index, cs.premium, []
        for _ in range(hours + 1):
            rows.append((idx, prem))
            idx /= math.exp(cs.spec.vol * math.sqrt(3600 / 31_536_000) * rng.gauss(0, 1))
            prem = prem * 0.97 + 0.0002 * rng.gauss(0, 1)
        rows.reverse()
        for h in range(1, hours + 1):
            rate8 = funding_rate(rows[h][1])
            cs.funding.append({"timestamp": first + h * HOUR_MS, "index_price": cs.px(rows[h][0]),
                               "prev_index_price": cs.px(rows[h - 1][0]),
                               "interest_8h": rate8, "interest_1h": rate8 / 8})

    # ---- listings and expiries -------------------------------------------------------------------
    def _new(self, obj: dict, day: dt.date | None, initial: bool) -> Inst:
        self.next_id += 1
        book = Book(obj["tick_size"], obj["min_trade_amount"], self.rng.randint(10_000, 9_000_000),
                    random.Random(self.rng.random()))
        seq = self.rng.randint(1000, 400_000) if initial else 0
        oi = obj["min_trade_amount"] * self.rng.randint(100, 100_000)
        inst = Inst(obj, day, book, seq, oi)
        self.live[inst.name] = inst
        self.known.add(inst.name)
        self._pools = None
        if not initial:
            for state in ("created", "started"):
                self.events.append((inst.kind, inst.settle, {"timestamp": self.now, "state": state,
                                                             "instrument_name": inst.name}))
        return inst

    def _list(self, c: str, t: int, initial: bool = False) -> None:
        cs = self.cur[c]
        spec = cs.spec

        def created() -> int:
            return t - self.rng.randint(1, 60) * DAY_MS if initial else t

        if universe.future_name(spec.prefix, None) not in self.known:
            self._new(universe.future_object(spec, None, self.next_id + 1, created()), None, initial)
        if self.usdc and not spec.linear and f"{c}_USDC-PERPETUAL" not in self.known:   # BTC_USDC-PERPETUAL
            self._new(universe.future_object(spec.as_linear(), None, self.next_id + 1, created()), None, initial)
        for day in universe.future_expiries(t) if not spec.linear else ():   # no dated linear futures
            if universe.future_name(c, day) not in self.known:
                self._new(universe.future_object(spec, day, self.next_id + 1, created()), day, initial)
        days = universe.option_expiries(t)
        for day in days[:6] if spec.linear else days:   # linear chains are shorter
            if day not in cs.option_days:
                self._list_options(c, day, t, created(), initial)

    def _list_options(self, c: str, day: dt.date, t: int, created: int, initial: bool) -> list[str]:
        cs = self.cur[c]
        cs.option_days.add(day)
        t_years = max(universe.expiry_ms(day) - t, HOUR_MS) / pricing.YEAR_MS
        names = []
        for strike in universe.strikes_for(cs.index, t_years, cs.base_vol, self.strikes):
            for is_call in (True, False):
                if universe.option_name(cs.spec.prefix, day, strike, is_call) in self.known:
                    continue
                obj = universe.option_object(cs.spec, day, strike, is_call, self.next_id + 1, created)
                names.append(self._new(obj, day, initial).name)
        return names

    def _settle(self, t: int) -> None:
        for cs in self.cur.values():
            cs.settle_index = cs.index
        for inst in [i for i in self.live.values() if i.expiry <= t]:
            self.expire(inst.name, t)
        for c in self.cur:
            self._list(c, t)

    def expire(self, name: str, t: int | None = None) -> bool:
        inst = self.live.pop(name, None)
        if inst is None:
            return False
        t = self.now if t is None else t
        inst.state = "closed"
        inst.delivery = self.cur[inst.cur].px(self.cur[inst.cur].index)
        inst.obj = {**inst.obj, "is_active": False}
        self.expired[name] = inst
        while len(self.expired) > 5000:
            self.expired.popitem(last=False)
        self._pools = None
        for state in ("closed", "settled"):
            self.events.append((inst.kind, inst.settle, {"timestamp": t, "state": state, "instrument_name": name}))
        return True

    def list_expiry(self, c: str) -> list[str]:
        """A new option expiry now: the first 08:00 UTC date not yet listed for ``c``."""
        cs = self.cur[c]
        day = universe.first_expiry_day(self.now)
        while day in cs.option_days:
            day += dt.timedelta(days=1)
        return self._list_options(c, day, self.now, self.now, False)

    def index_names(self) -> dict[str, str]:
        """``{index name: base}``: ``btc_usd``, ``sol_usdc``, and ``btc_usdc`` (BTC's linear products')
        when the USDC universe is simulated."""
        out = {cs.spec.index_name: c for c, cs in self.cur.items()}
        if self.usdc:
            out.update({f"{c.lower()}_usdc": c for c, cs in self.cur.items() if not cs.spec.linear})
        return out

    def drain_events(self) -> list[tuple[str, str, dict]]:
        out, self.events = self.events, []
        return out

    # ---- prices --------------------------------------------------------------------------------
    def years_to(self, inst: Inst) -> float:
        return max(inst.expiry - self.now, 1000) / pricing.YEAR_MS

    def price(self, inst: Inst) -> float:
        """Mark price, cached per tick; for options also greeks/iv/forward."""
        if inst.mark_at == self.tick_no:
            return inst.mark
        cs = self.cur[inst.cur]
        if inst.perp:
            inst.mark = cs.px(cs.index * (1 + cs.premium))
        elif inst.kind == "future":
            inst.mark = cs.px(cs.index * math.exp(cs.basis * self.years_to(inst)))
        elif inst.linear:   # a USDC option: priced and quoted in USDC, greeks in USDC too
            t = self.years_to(inst)
            fwd = cs.index * math.exp(cs.basis * t)
            assert inst.strike is not None  # an option
            vol = pricing.smile_vol(pricing.atm_vol(cs.base_vol, t), fwd, inst.strike, t, cs.skew, cs.curv)
            res = pricing.black76(fwd, inst.strike, t, vol, inst.is_call)
            inst.mark = round(res["price_usd"], 6)
            inst.iv = round(vol * 100, 2)
            inst.fwd = round(fwd, 6)
            inst.greeks = {"delta": round(res["delta"], 5), "gamma": round(res["gamma"], 5),
                           "vega": round(res["vega"], 5), "theta": round(res["theta"], 5),
                           "rho": round(res["rho"], 5)}
        else:
            t = self.years_to(inst)
            fwd = cs.index * math.exp(cs.basis * t)
            assert inst.strike is not None  # an option
            vol = pricing.smile_vol(pricing.atm_vol(cs.base_vol, t), fwd, inst.strike, t, cs.skew, cs.curv)
            res = pricing.black76(fwd, inst.strike, t, vol, inst.is_call)
            inst.mark = round(res["price"], 8)
            inst.iv = round(vol * 100, 2)
            inst.fwd = round(fwd, 2)
            inst.greeks = {"delta": round(res["delta"], 5), "gamma": round(res["gamma"], 8),
                           "vega": round(res["vega"], 5), "theta": round(res["theta"], 5),
                           "rho": round(res["rho"], 5)}
        inst.mark_at = self.tick_no
        return inst.mark

    def half_spread(self, inst: Inst, mark: float) -> float:
        if inst.kind == "option":
            return max(inst.tick, mark * 0.03)
        return inst.tick * (1 if inst.perp else 2)

    def touch_book(self, inst: Inst, jitter: bool = True) -> Book:
        """Bring the book to the current mark (and make one small random change)."""
        mark = self.price(inst)
        inst.book.recentre(mark, self.half_spread(inst, mark))
        if jitter:
            inst.book.jitter()
        return inst.book

    def find(self, name: str) -> Inst | None:
        return self.live.get(name) or self.expired.get(name)
