"""The publisher: active channels and their subscribers, the 100 ms tick, the rate budget, fan-out.

Each channel's notification is built and serialised once and the same WebSocket frame bytes are
queued to every subscriber; each connection gets one write per tick. Trades and instrument-state
events are pushed as they happen; the periodic channels (ticker, quote, book, index, ...) share a
budget of ``rate`` notifications per second, served round-robin, at most one per channel per tick.
"""

from __future__ import annotations

import collections

import orjson

from collector.deribit.instruments import is_option, settlement_of
from collector.sim import channels
from collector.sim.channels import Chan
from collector.sim.market import Market


def ws_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented server-to-client text frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def notification(channel: str, data) -> bytes:
    return ws_frame(orjson.dumps({"jsonrpc": "2.0", "method": "subscription",
                                  "params": {"channel": channel, "data": data}}))


class Hub:
    def __init__(self, market: Market, rate: float) -> None:
        self.m = market
        self.rate = rate
        self.chans: dict[str, Chan] = {}
        self.periodic: list[Chan] = []
        self.cursor = 0
        self.budget = 0.0
        self.by_inst: dict[str, list[Chan]] = {}
        self.kinds: list[Chan] = []
        self.states: list[Chan] = []
        self.dirty: set = set()
        self.sent: collections.Counter[str] = collections.Counter()        # notifications generated per channel
        self.frames = 0                            # frames queued to sockets (after fan-out)
        self.suppressed: collections.Counter[str] = collections.Counter()  # trades / book changes held back by faults

    # ---- registry ------------------------------------------------------------------------------
    def subscribe(self, conn, names: list[str]) -> tuple[list[str], list[bytes]]:
        """Subscribe ``conn``; returns the accepted channel names and the snapshot frames to send
        after the response. Raises RawRefused (then nothing is subscribed)."""
        parsed = []
        for name in names:
            ch = self.chans.get(name) or channels.parse(name, self.m)
            if ch is not None:
                parsed.append(ch)
        accepted, snapshots = [], []
        for ch in parsed:
            if ch.name not in self.chans:
                self.chans[ch.name] = ch
                self._index(ch, add=True)
            if conn not in ch.subs:
                ch.subs.add(conn)
                conn.channels.add(ch.name)
                if ch.kind == "book":
                    snapshots.append(notification(ch.name, channels.book_snapshot(ch, self.m)))
                    self.frames += 1
            accepted.append(ch.name)
        return accepted, snapshots

    def unsubscribe(self, conn, names: list[str]) -> list[str]:
        done = []
        for name in names:
            ch = self.chans.get(name)
            if ch is None or conn not in ch.subs:
                continue
            ch.subs.discard(conn)
            conn.channels.discard(name)
            done.append(name)
            if not ch.subs:
                del self.chans[name]
                self._index(ch, add=False)
        return done

    def drop(self, conn) -> None:
        self.unsubscribe(conn, list(conn.channels))
        self.dirty.discard(conn)

    def _index(self, ch: Chan, add: bool) -> None:
        if ch.kind in channels.PERIODIC:
            target = self.periodic
        elif ch.kind == "trades":
            assert ch.inst is not None
            target = self.by_inst.setdefault(ch.inst, [])
        elif ch.kind == "trades_kind":
            target = self.kinds
        elif ch.kind == "state":
            target = self.states
        else:
            return
        if add:
            target.append(ch)
        else:
            if ch in target:
                target.remove(ch)
            if ch.kind == "trades" and not target:
                assert ch.inst is not None
                del self.by_inst[ch.inst]

    # ---- sending -------------------------------------------------------------------------------
    def publish(self, ch: Chan, data) -> None:
        frame = notification(ch.name, data)
        self.sent[ch.name] += 1
        for conn in ch.subs:
            conn.queue(frame)
            self.dirty.add(conn)
        self.frames += len(ch.subs)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, set()
        for conn in dirty:
            conn.flush()

    # ---- the tick ------------------------------------------------------------------------------
    def tick(self, now_ms: int, real_dt: float) -> None:
        m = self.m
        trades = m.advance(now_ms, real_dt)
        if trades:
            self._trades(trades)
        events = m.drain_events()
        for kind, cur, data in events:
            for ch in list(self.states):
                if ch.arg in (kind, "any") and ch.cur in (cur, "any"):
                    self.publish(ch, data)
            if data["state"] == "closed":
                self._close_channels(data["instrument_name"])
        self._periodic(real_dt)
        self.flush()

    def _trades(self, trades: list[dict]) -> None:
        m = self.m
        out: dict[str, list[dict]] = {}
        for t in trades:
            inst = m.find(t["instrument_name"])
            if inst is not None and inst.skip_trades > 0:
                inst.skip_trades -= 1
                self.suppressed["trades:" + inst.name] += 1
                continue
            out.setdefault(t["instrument_name"], []).append(t)
        for name, batch in out.items():
            for ch in self.by_inst.get(name, ()):
                self.publish(ch, batch)
        for ch in self.kinds:
            assert ch.cur is not None  # a trades_kind channel
            batch = [t for name, ts in out.items() for t in ts
                     if (ch.cur == "any" or settlement_of(name) == ch.cur)   # USDC: SOL_USDC-..., XRP_USDC-...
                     and (ch.arg == "any" or (ch.arg == "option") == is_option(name))]
            if batch:
                batch.sort(key=lambda t: t["timestamp"])
                self.publish(ch, batch)

    def _close_channels(self, name: str) -> None:
        """An expired instrument's channels stop (subscribers keep the names, like Deribit)."""
        for ch in [c for c in self.periodic if c.inst == name]:
            self.periodic.remove(ch)

    def _periodic(self, real_dt: float) -> None:
        chans = self.periodic
        if not chans:
            self.budget = 0.0
            return
        self.budget = min(self.budget + self.rate * real_dt, float(len(chans)))
        n = int(self.budget)
        self.budget -= n
        m = self.m
        for _ in range(n):
            if self.cursor >= len(chans):
                self.cursor = 0
            ch = chans[self.cursor]
            self.cursor += 1
            data = channels.build(ch, m)
            if data is None:
                continue
            if ch.kind == "book":
                assert ch.inst is not None
                inst = m.live[ch.inst]
                if inst.skip_book > 0:
                    inst.skip_book -= 1
                    self.suppressed["book:" + inst.name] += 1
                    continue
            self.publish(ch, data)
