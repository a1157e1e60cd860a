"""Parse throughput of the WS hot path on one core: decode + classify + parse, on synthetic frames shaped
like the Deribit examples (an option ticker; an option trades batch of 1-3 trades).

Prints one line per figure: ``name value unit``.

    .venv/bin/python bench/parse_rate.py [--messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import random
import time

import orjson

from collector.deribit.frames import Notification, classify, decode
from collector.deribit.parse import quote_from_ticker, trades


def ticker_frames(n: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(n):
        strike = 20000 + 1000 * (i % 80)
        inst = f"BTC-27DEC26-{strike}-{'C' if i % 2 else 'P'}"
        empty_ask = i % 7 == 0
        data = {
            "underlying_price": 97000.5 + rng.random(), "underlying_index": "BTC-27DEC26",
            "timestamp": 1766800000000 + i * 100, "stats": {"volume": 12.3, "price_change": -1.5, "low": 0.01, "high": 0.02},
            "state": "open", "settlement_price": 0.0123, "open_interest": 321.4, "min_price": 0.0001,
            "max_price": 0.5, "mark_price": 0.0345 + rng.random() / 100, "mark_iv": 55.1, "last_price": 0.034,
            "interest_rate": 0.0, "instrument_name": inst, "index_price": 96950.12,
            "greeks": {"vega": 120.5, "theta": -45.2, "rho": 30.1, "gamma": 0.00002, "delta": 0.45},
            "estimated_delivery_price": 96950.12, "bid_iv": 54.2, "best_bid_price": 0.034,
            "best_bid_amount": 12.5, "best_ask_price": 0.0 if empty_ask else 0.0355,
            "best_ask_amount": 0.0 if empty_ask else 8.0, "ask_iv": 0.0 if empty_ask else 56.0,
        }
        out.append(orjson.dumps({"jsonrpc": "2.0", "method": "subscription",
                                 "params": {"channel": f"ticker.{inst}.100ms", "data": data}}))
    return out


def trade_frames(n: int, rng: random.Random) -> list[bytes]:
    out = []
    seq = 1000
    for i in range(n):
        batch = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            seq += 1
            batch.append({"trade_seq": seq, "trade_id": str(48079289 + seq), "timestamp": 1766800000000 + i * 100,
                          "tick_direction": seq % 4, "price": 0.0075, "mark_price": 0.01062686, "iv": 47.58,
                          "instrument_name": f"BTC-27DEC26-{20000 + 1000 * (i % 80)}-C", "index_price": 96956.17,
                          "direction": "sell" if seq % 2 else "buy", "amount": 3.0, "contracts": 3.0})
        out.append(orjson.dumps({"jsonrpc": "2.0", "method": "subscription",
                                 "params": {"channel": "trades.option.BTC.100ms", "data": batch}}))
    return out


def rate(frames: list[bytes], parse, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for raw in frames:
            f = classify(decode(raw))
            if type(f) is Notification:
                parse(f.data)
        best = min(best, time.perf_counter() - t0)
    return len(frames) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(1)
    tick = ticker_frames(args.messages, rng)
    trd = trade_frames(args.messages, rng)
    print(f"parse_ticker_msgs_per_s {rate(tick, quote_from_ticker, args.rounds):.0f} msg/s")
    print(f"parse_trades_msgs_per_s {rate(trd, trades, args.rounds):.0f} msg/s")


if __name__ == "__main__":
    main()
