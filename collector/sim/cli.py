"""`collector sim`: run the local Deribit until interrupted; print one JSON line with its URLs."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import sys

import click

from collector.deribit.fields import datetime_to_ms
from collector.sim.rules import CreditLimits
from collector.sim.server import Server, SimConfig


def _start(value: str | None) -> int | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO time: {value!r}", param_hint="--start") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return datetime_to_ms(when)


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0 = a free port.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the universe and the market.")
@click.option("--currencies", default="BTC,ETH", show_default=True,
              help="Comma-separated bases, e.g. BTC,ETH,SOL. BTC and ETH are "
              "coin-margined; any other (or USDC) lists the USDC-linear universe: SOL, XRP and the "
              "bases given, plus BTC_USDC-PERPETUAL/ETH_USDC-PERPETUAL.")
@click.option("--strikes", default=16, show_default=True, type=click.IntRange(2, 500),
              help="Strikes per option expiry (x2 for calls and puts); the universe size.")
@click.option("--rate", default=1000.0, show_default=True, type=click.FloatRange(0),
              help="Notifications/s across the subscribed periodic channels (ticker, quote, book, index, ...).")
@click.option("--trade-rate", default=20.0, show_default=True, type=click.FloatRange(0),
              help="Trades/s generated across the universe (recorded whether or not anyone listens).")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(0.001),
              help="Simulated seconds per real second (3600: an hour per second).")
@click.option("--start", default=None, help="Simulated start time, ISO 8601 (default: now, UTC).")
@click.option("--min-heartbeat", default=10.0, show_default=True, type=click.FloatRange(0.05),
              help="Smallest interval accepted by public/set_heartbeat (Deribit: 10).")
@click.option("--max-connections", default=32, show_default=True, type=click.IntRange(0),
              help="Simultaneous connections per client address (0 = unlimited).")
@click.option("--credits/--no-credits", default=True, show_default=True, help="Enforce the request credit scheme.")
@click.option("--credit-cost", default=500, show_default=True, type=click.IntRange(1))
@click.option("--credit-max", default=50_000, show_default=True, type=click.IntRange(1))
@click.option("--credit-refill", default=10_000, show_default=True, type=click.IntRange(0), help="Credits per second.")
@click.option("--trade-history", default=100_000, show_default=True, type=click.IntRange(100),
              help="Trades kept per instrument and per currency for queries and /_sim/trades.")
@click.option("--testnet", is_flag=True, help="Answer with testnet: true.")
def sim(host, port, seed, currencies, strikes, rate, trade_rate, speed, start, min_heartbeat, max_connections,
        credits, credit_cost, credit_max, credit_refill, trade_history, testnet) -> None:
    """Run a local Deribit (WebSocket JSON-RPC, REST and a /_sim control API on one port).

    Prints one JSON line with the ws, rest and control URLs when ready, then serves until SIGINT/SIGTERM.
    """
    curs = [c.strip().upper() for c in currencies.split(",") if c.strip()]
    if not curs or not all(c.isalnum() for c in curs):
        raise click.BadParameter("a comma-separated list of currency codes", param_hint="--currencies")
    cfg = SimConfig(host=host, port=port, seed=seed, currencies=curs, strikes=strikes, rate=rate,
                    trade_rate=trade_rate, speed=speed, start_ms=_start(start), min_heartbeat=min_heartbeat,
                    max_connections=max_connections,
                    credits=CreditLimits(credit_cost, credit_max, credit_refill, credits),
                    trade_history=trade_history, testnet=testnet)
    runner = asyncio.run
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover
        pass
    runner(_serve(cfg))


async def _serve(cfg: SimConfig) -> None:
    server = Server(cfg)
    urls = await server.start()
    sys.stdout.write(json.dumps(urls) + "\n")
    sys.stdout.flush()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await server.stop()
