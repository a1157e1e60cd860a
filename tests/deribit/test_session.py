"""The WebSocket session against the simulator on loopback: batched subscribes within Deribit's limits,
reconnecting forever with a capped backoff, resubscribing everything on each new connection."""

from __future__ import annotations

import asyncio
import random
import socket

import requests

from collector.deribit import protocol
from collector.backoff import full_jitter
from collector.deribit.session import WsSession
from collector.sim.runner import SimThread
from collector.sim.server import SimConfig


def test_backoff_is_capped_exponential_with_full_jitter():
    """The session's reconnect delay: full_jitter with a floor of half the initial delay."""
    rng = random.Random(1)

    def backoff_delay(attempt, initial, maximum, rng):
        return full_jitter(attempt, initial, maximum, floor=initial / 2, rng=rng)

    for attempt in range(40):
        d = backoff_delay(attempt, 1.0, 60.0, rng)
        assert 0.5 <= d <= min(60.0, 2.0 ** attempt)
    assert max(backoff_delay(30, 1.0, 60.0, rng) for _ in range(200)) > 30   # jitter spreads over the cap


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _until(cond, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_the_whole_chain_of_both_currencies_subscribes_in_batches_within_limits():
    sim = SimThread(SimConfig(seed=3, rate=100, trade_rate=0)).start()
    try:
        names = [i["instrument_name"] for cur in ("BTC", "ETH") for i in requests.get(
            f"{sim.urls['rest']}/public/get_instruments", params={"currency": cur, "kind": "option"},
            timeout=10).json()["result"]]
        assert len(names) >= 600
        notes = []

        async def main():
            s = WsSession(sim.urls["ws"], on_notification=lambda c, d, t: notes.append(c), subscribe_interval_s=0.05)
            s.want(protocol.ticker_channel(n) for n in names)
            task = asyncio.create_task(s.run())
            await _until(lambda: len(s.subscribed) == len(names), 30)
            await _until(lambda: len(notes) > 50, 10)
            s.stop()
            await task
            return s

        s = asyncio.run(main())
        stats = requests.get(f"{sim.urls['control']}/stats", timeout=10).json()
        assert stats["requests"]["refused"] == {}
        assert s.connects == 1
        for req in protocol.subscribe_batches([protocol.ticker_channel(n) for n in names], protocol.RequestIds()):
            assert len(req.channels) <= 250 and len(req.frame.encode()) < 32 * 1024
    finally:
        sim.stop()


def test_reconnects_forever_and_resubscribes_when_the_server_comes_back():
    port = _free_port()
    connected = []

    async def main():
        s = WsSession(f"ws://127.0.0.1:{port}/ws/api/v2", on_notification=lambda c, d, t: None,
                      on_connected=lambda info: connected.append(info), backoff_initial_s=0.05, backoff_max_s=0.2)
        s.want(["deribit_price_index.btc_usd", "trades.option.BTC.100ms"])
        task = asyncio.create_task(s.run())
        await asyncio.sleep(2.0)                  # nothing listens: it keeps trying, never gives up
        assert not task.done() and not connected
        sim = await asyncio.to_thread(lambda: SimThread(SimConfig(seed=1, port=port, rate=50)).start())
        try:
            await _until(lambda: connected, 10)
            assert connected[0].channels == 2 and not connected[0].refused
            requests.post(f"{sim.urls['control']}/fault", json={"kind": "drop_connections"}, timeout=10)
            await _until(lambda: len(connected) == 2, 10)
            assert connected[1].channels == 2       # everything resubscribed on the new connection
            assert s.subscribed == {"deribit_price_index.btc_usd", "trades.option.BTC.100ms"}
        finally:
            s.stop()
            await task
            await asyncio.to_thread(sim.stop)
        return s

    s = asyncio.run(main())
    assert s.connects == 2
