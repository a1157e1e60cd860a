"""Deribit-shaped objects built from the market state: ticker, book summary, order book, OHLCV,
funding, trade queries. Pure functions of a Market (plus the clock it already holds)."""

from __future__ import annotations

import math

from collector.sim.market import HOUR_MS, Inst, Market, funding_rate

RESOLUTIONS = {"1": 1, "3": 3, "5": 5, "10": 10, "15": 15, "30": 30, "60": 60, "120": 120, "180": 180,
               "360": 360, "720": 720, "1D": 1440}


def _stats(m: Market, inst: Inst) -> dict:
    since = (m.now - 86_400_000) // HOUR_MS
    buckets = [inst.buckets[k] for k in sorted(inst.buckets) if k > since]
    if not buckets:
        out0: dict = {"volume_usd": 0.0, "volume": 0.0, "price_change": None, "low": None, "high": None}
        if inst.linear:   # the real MATIC_USDC option ticker: volume_notional 0.0 before any trade
            out0["volume_notional"] = 0.0
        return out0
    first = buckets[0][4]
    out = {
        "volume_usd": round(sum(b[1] for b in buckets), 2),
        "volume": round(sum(b[0] for b in buckets), 8),
        "price_change": round((inst.last - first) / first * 100, 4) if inst.last and first else None,
        "low": min(b[3] for b in buckets),
        "high": max(b[2] for b in buckets),
    }
    if inst.kind != "option" or inst.linear:
        out["volume_notional"] = round(sum(b[5] for b in buckets), 2)
    return out


def ticker(m: Market, inst: Inst) -> dict:
    cs = m.cur[inst.cur]
    index = cs.px(cs.index)
    if inst.state != "open":
        return _closed_ticker(m, inst, index)
    mark = m.price(inst)
    bid, bid_amt = inst.book.best_bid()
    ask, ask_amt = inst.book.best_ask()
    band = 0.015 if inst.kind == "future" else 0.5
    out = {
        "timestamp": m.now,
        "state": "open",
        "instrument_name": inst.name,
        "best_bid_price": bid,
        "best_bid_amount": bid_amt,
        "best_ask_price": ask,
        "best_ask_amount": ask_amt,
        "last_price": inst.last,
        "mark_price": mark,
        "index_price": index,
        "estimated_delivery_price": index,
        "min_price": round(max(mark * (1 - band), inst.tick), 8) if inst.kind == "future" else inst.tick,
        "max_price": round(mark * (1 + band), 8) if inst.kind == "future" else round(mark + _max_add(m, inst), 4),
        "open_interest": round(inst.oi, 8),
        "settlement_price": _settlement(m, inst),
        "stats": _stats(m, inst),
    }
    if inst.perp:
        out["current_funding"] = funding_rate(cs.premium)
        out["funding_8h"] = cs.funding[-1]["interest_8h"] if cs.funding else 0.0
        out["interest_value"] = cs.interest
    if inst.kind == "option":
        assert inst.greeks is not None  # an option's, set with its mark
        # vega in the option's price unit per vol point: USDC for a linear option, the coin otherwise
        vega_coin = inst.greeks["vega"] if inst.linear else inst.greeks["vega"] / inst.fwd if inst.fwd else 0.0
        out.update({
            "underlying_price": inst.fwd,
            "underlying_index": _underlying(m, inst),
            "mark_iv": inst.iv,
            "bid_iv": _iv_at(inst.iv, mark, bid, vega_coin),
            "ask_iv": _iv_at(inst.iv, mark, ask, vega_coin),
            "interest_rate": 0.0,
            "greeks": dict(inst.greeks),
        })
    return out


def _max_add(m: Market, inst: Inst) -> float:
    """How far above the mark an option may be quoted: 0.5 coin, or half the index in USDC."""
    return round(m.cur[inst.cur].index * 0.5, 4) if inst.linear else 0.5


def _iv_at(mark_iv: float, mark: float, price: float, vega_coin: float) -> float:
    """IV of a quote, first-order from the mark: 0.0 for an empty side (as Deribit sends)."""
    if price <= 0 or vega_coin <= 0:
        return 0.0
    return round(max(1.0, min(500.0, mark_iv + (price - mark) / vega_coin)), 2)


def _settlement(m: Market, inst: Inst) -> float:
    cs = m.cur[inst.cur]
    if inst.kind == "option":
        return inst.mark
    if inst.perp:
        return cs.px(cs.settle_index)
    return cs.px(cs.settle_index * math.exp(cs.basis * m.years_to(inst)))


def _underlying(m: Market, inst: Inst) -> str:
    if inst.linear:   # no linear futures to point at (real MATIC_USDC ticker: "index_price")
        return "index_price" if inst.obj["settlement_period"] == "day" else f"SYN.{inst.name.rsplit('-', 2)[0]}"
    fut = f"{inst.cur}-{inst.name.split('-')[1]}"
    if fut in m.live:
        return fut
    return "index_price" if inst.obj["settlement_period"] == "day" else f"SYN.{fut}"


def _closed_ticker(m: Market, inst: Inst, index: float) -> dict:
    out = {"timestamp": m.now, "state": "closed", "instrument_name": inst.name, "best_bid_price": 0.0,
           "best_bid_amount": 0.0, "best_ask_price": 0.0, "best_ask_amount": 0.0, "last_price": inst.last,
           "mark_price": 0.0, "index_price": index, "estimated_delivery_price": "expired",
           "delivery_price": inst.delivery, "min_price": 0.0, "max_price": 0.0, "open_interest": 0.0,
           "stats": _stats(m, inst)}
    if inst.kind == "option":
        out.update({"underlying_price": inst.delivery, "underlying_index": "index_price", "mark_iv": 0.0,
                    "bid_iv": 0.0, "ask_iv": 500.0, "interest_rate": 0.0,
                    "greeks": {"delta": 0.0, "gamma": 0.0, "vega": 0.0, "theta": 0.0, "rho": 0.0}})
    return out


def book_summary(m: Market, inst: Inst) -> dict:
    t = ticker(m, inst)
    st = t["stats"]
    bid, ask = t["best_bid_price"], t["best_ask_price"]
    out = {
        "instrument_name": inst.name,
        "base_currency": inst.cur,
        "quote_currency": inst.obj["quote_currency"],
        "volume": st["volume"],
        "volume_usd": st["volume_usd"],
        "high": st["high"],
        "low": st["low"],
        "last": inst.last,
        "price_change": st["price_change"],
        "bid_price": bid or None,
        "ask_price": ask or None,
        "mid_price": round((bid + ask) / 2, 8) if bid and ask else None,
        "mark_price": t["mark_price"],
        "open_interest": t["open_interest"],
        "creation_timestamp": m.now,
        "estimated_delivery_price": t["estimated_delivery_price"],
    }
    if inst.kind == "future":
        out["volume_notional"] = st.get("volume_notional", 0.0)
    if inst.perp:
        out["current_funding"] = t["current_funding"]
        out["funding_8h"] = t["funding_8h"]
    if inst.kind == "option":
        out.update({"mark_iv": t["mark_iv"], "interest_rate": 0.0, "underlying_index": t["underlying_index"],
                    "underlying_price": t["underlying_price"]})
    return out


def order_book(m: Market, inst: Inst, depth: int) -> dict:
    out = ticker(m, inst)
    bids, asks = inst.book.snapshot(depth)
    out.update({"bids": bids, "asks": asks, "change_id": inst.book.change_id})
    return out


def quote(m: Market, inst: Inst) -> dict:
    bid, bid_amt = inst.book.best_bid()
    ask, ask_amt = inst.book.best_ask()
    return {"timestamp": m.now, "instrument_name": inst.name, "best_bid_price": bid, "best_bid_amount": bid_amt,
            "best_ask_price": ask, "best_ask_amount": ask_amt}


def chart(trades, inst: Inst, start: int, end: int, minutes: int, now: int | None = None) -> dict:
    """TradingView bars from the instrument's own trades: one bar per period from the first traded
    period in range; periods without trades repeat the previous close with zero volume."""
    span = minutes * 60_000
    first_tick = start - start % span
    bars: dict[int, list] = {}
    prev_close = None
    for t in trades:
        ts = t["timestamp"]
        if ts < first_tick:
            prev_close = t["price"]
            continue
        if ts > end:
            break
        key = ts - ts % span
        price, amount = t["price"], t["amount"]
        # volume in the coin, cost in the quote: inverse futures trade USD amounts
        vol, cost = (amount, amount * price) if inst.kind == "option" or inst.linear else (amount / price, amount)
        b = bars.get(key)
        if b is None:
            bars[key] = [price, price, price, price, vol, cost]
        else:
            b[1] = max(b[1], price)
            b[2] = min(b[2], price)
            b[3] = price
            b[4] += vol
            b[5] += cost
    out: dict = {"ticks": [], "open": [], "high": [], "low": [], "close": [], "volume": [], "cost": []}
    if bars or prev_close is not None:
        tick = first_tick if prev_close is not None else min(bars)
        last = min(end, now) if now is not None else end
        while tick <= last and len(out["ticks"]) < 10_000:
            b = bars.get(tick) or [prev_close, prev_close, prev_close, prev_close, 0.0, 0.0]
            for key, val in zip(("open", "high", "low", "close"), b):
                out[key].append(val)
            out["ticks"].append(tick)
            out["volume"].append(round(b[4], 8))
            out["cost"].append(round(b[5], 8))
            prev_close = b[3]
            tick += span
    out["status"] = "ok" if out["ticks"] else "no_data"
    return out


def funding_history(m: Market, cur: str, start: int, end: int) -> list[dict]:
    return [dict(r) for r in m.cur[cur].funding if start <= r["timestamp"] <= end]


def funding_value(m: Market, cur: str, start: int, end: int) -> float:
    return sum(r["interest_1h"] for r in m.cur[cur].funding if start < r["timestamp"] <= end)


def select_trades(trades, *, start_ts=None, end_ts=None, start_seq=None, end_seq=None,
                  count=10, sorting="desc") -> dict:
    """Deribit's trade-query semantics: filter, newest ``count`` (or oldest for asc), has_more."""
    sel = [t for t in trades
           if (start_ts is None or t["timestamp"] >= start_ts) and (end_ts is None or t["timestamp"] <= end_ts)
           and (start_seq is None or t["trade_seq"] >= start_seq) and (end_seq is None or t["trade_seq"] <= end_seq)]
    if sorting == "asc":
        page = sel[:count]
    else:
        page = sel[-count:] if count else []
        if sorting in ("desc", "default"):
            page = page[::-1]
    return {"trades": page, "has_more": len(sel) > len(page)}
