"""A load generator for the stream benchmarks: the simulator, with its ticker channels replayed fast.

    .venv/bin/python bench/loadgen.py [--rate 60000] [--strikes 16] [--currencies BTC,ETH]

It is `collector sim` (same universe, REST, handshake, heartbeat, subscribe, trades, index, book), except
that the ``ticker.*`` channels are not rebuilt by the market model on every tick (one simulator process
tops out near 17k msg/s, see sim_rate.py). Each ticker channel's notification is built once by the
simulator, pre-encoded around two holes, and re-sent with a fresh exchange ``timestamp`` (wall clock ms,
strictly increasing per channel, so every row is new) and a changed ``best_bid_amount`` (so the
collector's quote-change filter keeps every frame: the worst case for the writer).

``--rate 0`` offers as fast as the socket drains: a frame is only queued while the connection's write
buffer is below 1 MB, so the collector's own ceiling sets the rate (backpressure over a real socket).
Prints one JSON line with the URLs (like `collector sim`), then serves until killed (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.sim import channels  # noqa: E402
from collector.sim.hub import Hub, ws_frame  # noqa: E402
from collector.sim.rules import CreditLimits  # noqa: E402
from collector.sim.server import Server, SimConfig  # noqa: E402

TS_MARK = 1111111111111
AMOUNT_MARK = 987654.125
BUFFER_LIMIT = 4 << 20


class BlastHub(Hub):
    """Ticker channels: ``blast_rate`` frames/s round-robin (0: as fast as the sockets drain)."""

    def __init__(self, market, rate: float, blast_rate: float) -> None:
        super().__init__(market, rate)
        self.blast_rate = blast_rate
        self.blast_budget = 0.0
        self.blast_cursor = 0
        self.templates: dict[str, tuple[bytes, bytes, bytes]] = {}
        self.last_ts: dict[str, int] = {}
        self.blasted = 0

    def _template(self, ch) -> tuple[bytes, bytes, bytes] | None:
        t = self.templates.get(ch.name)
        if t is None:
            data = channels.build(ch, self.m)
            if data is None:
                return None
            data = dict(data, timestamp=TS_MARK, best_bid_amount=AMOUNT_MARK)
            raw = orjson.dumps({"jsonrpc": "2.0", "method": "subscription",
                                "params": {"channel": ch.name, "data": data}})
            a, rest = raw.split(str(TS_MARK).encode(), 1)
            b, c = rest.split(repr(AMOUNT_MARK).encode(), 1)
            t = self.templates[ch.name] = (a, b, c)
        return t

    def _periodic(self, real_dt: float) -> None:
        tickers = [ch for ch in self.periodic if ch.kind == "ticker"]
        others = [ch for ch in self.periodic if ch.kind != "ticker"]
        saved, self.periodic = self.periodic, others
        try:
            super()._periodic(real_dt)
        finally:
            self.periodic = saved
        if not tickers:
            return
        if self.blast_rate > 0:
            self.blast_budget = min(self.blast_budget + self.blast_rate * real_dt, self.blast_rate)
            n = int(self.blast_budget)
            self.blast_budget -= n
        else:
            n = 20_000  # per tick: a safety bound far above what one client drains
        now = int(time.time() * 1000)
        last_ts, sent, idle = self.last_ts, 0, 0
        while sent < n and idle <= len(tickers):
            if self.blast_cursor >= len(tickers):
                self.blast_cursor = 0
            ch = tickers[self.blast_cursor]
            self.blast_cursor += 1
            subs = [c for c in ch.subs if not c.closed and not c.transport.is_closing()]
            if not subs:
                idle += 1
                continue
            idle = 0
            if self.blast_rate <= 0 and sent % 200 == 0:
                for conn in subs:
                    conn.flush()
                if any(c.transport.get_write_buffer_size() > BUFFER_LIMIT for c in subs if not c.closed):
                    break
            t = self._template(ch)
            if t is None:
                continue
            ts = max(now, last_ts.get(ch.name, 0) + 1)
            last_ts[ch.name] = ts
            k = self.blasted
            frame = ws_frame(b"".join((t[0], str(ts).encode(), t[1], str(1.0 + (k % 100_000)).encode(), t[2])))
            for conn in subs:
                conn.queue(frame)
                self.dirty.add(conn)
            self.frames += len(subs)
            self.blasted += 1
            sent += 1


async def serve(cfg: SimConfig, blast_rate: float) -> None:
    server = Server(cfg)
    server.hub = BlastHub(server.market, cfg.rate, blast_rate)
    urls = await server.start()
    sys.stdout.write(json.dumps(urls) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()   # SIGTERM's default action ends the process (nothing to save)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=60_000, help="ticker frames/s; 0 = as fast as the socket drains")
    ap.add_argument("--strikes", type=int, default=16)
    ap.add_argument("--currencies", default="BTC,ETH")
    ap.add_argument("--trade-rate", type=float, default=50)
    ap.add_argument("--tick", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    cfg = SimConfig(seed=args.seed, currencies=[c.strip().upper() for c in args.currencies.split(",")],
                    strikes=args.strikes, rate=1000.0, trade_rate=args.trade_rate, tick=args.tick,
                    max_connections=0, credits=CreditLimits(500, 50_000, 10_000, False))
    import uvloop
    uvloop.run(serve(cfg, args.rate))


if __name__ == "__main__":
    main()
