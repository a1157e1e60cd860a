"""The stream's instrument lifecycle: which channels to follow, listings and expiries without reconnecting.

:class:`Lifecycle` owns the live options and the followed ones. At start it picks the channels (the
currency's trades, index, instrument states, perpetual book, ticker and trades, plus the tickers of the top-N options
by open interest and volume, or of the whole chain when ``WS_{CUR}_TOP_N_INSTRUMENTS=0``).
``instrument.state.*`` notifications add new options and drop ended ones (unsubscribed, their stream
state forgotten); every few minutes ``get_instruments`` reconciles what the notifications may have
missed, and in top-N mode the options are re-ranked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine

from collector.deribit import protocol
from collector.deribit.parse import InstrumentState
from collector.deribit.rest import DeribitError
from collector.deribit.session import WsSession
from collector.backoff import exponential
from collector.deribit.instruments import currency, is_option

log = logging.getLogger("collector.jobs.ws")
ENDED = {"closed", "settled", "terminated", "expired", "deactivated", "inactive"}
STARTED = {"created", "started", "open"}
FetchChain = Callable[[], tuple[set[str], list[str]]]   # -> (live option names, ranked names to follow)


class Lifecycle:
    def __init__(self, currency: str, top_n: int, session: WsSession, *, fetch_chain: FetchChain,
                 forget_instrument: Callable[[str], None],
                 spawn: Callable[[Coroutine[Any, Any, Any], str], None],
                 reconcile_every_s: float = 300.0, rerank_every_s: float = 900.0,
                 perpetual_book: bool = True) -> None:
        self.cur = currency
        self.top_n = top_n
        self._session = session
        self._fetch_chain = fetch_chain
        self._forget_instrument = forget_instrument
        self._spawn = spawn
        self._reconcile_every = reconcile_every_s
        self._rerank_every = rerank_every_s
        self._perpetual_book = perpetual_book
        self.live: set[str] = set()          # live option names
        self.followed: set[str] = set()      # options whose ticker is subscribed

    def base_channels(self) -> list[str]:
        c = currency(self.cur)   # SOL: trades.option.USDC.100ms (the pipeline keeps SOL's), sol_usdc
        chans = [protocol.trades_channel("option", src) for src in c.sources]
        chans.append(f"deribit_price_index.{c.index_name}")
        for kind in ("option", "future"):
            chans += [protocol.instrument_state_channel(kind, src) for src in c.sources]
        if self._perpetual_book:
            chans.append(protocol.book_channel(c.perpetual))
        # the perpetual's ticks: perpetuals_quotes (its ticker) and perpetuals_trades
        chans += [protocol.ticker_channel(c.perpetual), protocol.instrument_trades_channel(c.perpetual)]
        return chans

    async def choose(self, stop: asyncio.Event) -> None:
        """The first channels: the chain over REST (3 tries; without it, trades and index meanwhile)."""
        attempt = 0
        chosen: list[str] = []
        while not stop.is_set():
            try:
                self.live, chosen = await asyncio.to_thread(self._fetch_chain)
                break
            except DeribitError as err:
                attempt += 1
                log.error("instruments_unavailable", extra={"error": str(err)[:300], "attempt": attempt,
                                                            "action": "retrying; streaming trades and index meanwhile"})
                if attempt >= 3:
                    break
                await asyncio.sleep(exponential(attempt, 1.0, 30.0))
        else:
            return
        self.followed = set(chosen)
        self._session.want(self.base_channels())
        self._session.want(protocol.ticker_channel(n) for n in chosen)

    def on_state(self, st: InstrumentState) -> None:
        name = st.instrument
        if st.state in ENDED:
            if name in self.live or name in self.followed:
                self.live.discard(name)
                self._drop(name)
        elif st.state in STARTED and is_option(name) and name not in self.live and currency(self.cur).owns(name):
            self.live.add(name)
            if self.top_n == 0:
                self._follow([name])

    def forget_channel(self, channel: str) -> None:
        """A channel the server refused (e.g. the instrument is gone): stop asking for it."""
        self._session.forget(channel)
        parts = channel.split(".")
        if parts[0] == "ticker" and len(parts) == 3:
            self.followed.discard(parts[1])

    def _follow(self, names: list[str]) -> None:
        names = [n for n in names if n not in self.followed]
        if not names:
            return
        self.followed.update(names)
        log.info("instruments_followed", extra={"count": len(names), "first": names[0]})
        self._spawn(self._session.subscribe(protocol.ticker_channel(n) for n in names), "subscribe")

    def _drop(self, name: str) -> None:
        was = name in self.followed
        self.followed.discard(name)
        self._forget_instrument(name)
        if was:
            log.info("instrument_ended", extra={"instrument": name})
            self._spawn(self._session.unsubscribe([protocol.ticker_channel(name)]), "unsubscribe")

    async def run(self) -> None:
        """Reconcile with ``get_instruments`` for ever (a task of the job)."""
        last_rank = time.monotonic()
        while True:
            await asyncio.sleep(self._reconcile_every)
            try:
                live, ranked = await asyncio.to_thread(self._fetch_chain)
            except DeribitError as err:
                log.warning("reconcile_failed", extra={"error": str(err)[:300]})
                continue
            for name in (self.live | self.followed) - live:
                self._drop(name)
            self.live = live
            if self.top_n == 0:
                self._follow(sorted(live - self.followed))
            elif time.monotonic() - last_rank >= self._rerank_every:
                last_rank = time.monotonic()
                want = set(ranked)
                for name in self.followed - want:
                    self._drop(name)
                self._follow([n for n in ranked if n not in self.followed])
