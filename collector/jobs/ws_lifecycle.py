"""The stream's instrument lifecycle: listings and expiries without reconnecting.

A mixin of :class:`~collector.jobs.ws.WsJob`. ``instrument.state.*`` notifications add new options (the
whole chain is followed when ``WS_{CUR}_TOP_N_INSTRUMENTS=0``) and drop ended ones (unsubscribed, their
state forgotten); every few minutes ``get_instruments`` reconciles what the notifications may have
missed, and in top-N mode the options are re-ranked by open interest.
"""

from __future__ import annotations

import asyncio
import logging
import time

from collector.deribit import protocol
from collector.deribit.parse import InstrumentState
from collector.deribit.rest import DeribitError
from collector.jobs import chain

log = logging.getLogger("collector.jobs.ws")
ENDED = {"closed", "settled", "terminated", "expired", "deactivated", "inactive"}
STARTED = {"created", "started", "open"}


class LifecycleMixin:
    def _on_state(self, st: InstrumentState) -> None:
        name = st.instrument
        if st.state in ENDED:
            if name in self.live or name in self.followed:
                self.live.discard(name)
                self._drop_instrument(name)
        elif st.state in STARTED and chain.is_option(name) and name not in self.live:
            self.live.add(name)
            if self.top_n == 0:
                self._follow([name])

    def _follow(self, names: list[str]) -> None:
        names = [n for n in names if n not in self.followed]
        if not names:
            return
        self.followed.update(names)
        log.info("instruments_followed", extra={"count": len(names), "first": names[0]})
        self._spawn(self.session.subscribe(protocol.ticker_channel(n) for n in names), "subscribe")

    def _drop_instrument(self, name: str) -> None:
        was = name in self.followed
        self.followed.discard(name)
        self.pipeline.forget(name)
        if was:
            log.info("instrument_ended", extra={"instrument": name})
            self._spawn(self.session.unsubscribe([protocol.ticker_channel(name)]), "unsubscribe")

    def _forget_channel(self, channel: str) -> None:
        """A channel the server refused (e.g. the instrument is gone): stop asking for it."""
        self.session.wanted.pop(channel, None)
        parts = channel.split(".")
        if parts[0] == "ticker" and len(parts) == 3:
            self.followed.discard(parts[1])

    async def _reconcile_loop(self) -> None:
        last_rank = time.monotonic()
        while True:
            await asyncio.sleep(self.opt.reconcile_every_s)
            try:
                live, ranked = await asyncio.to_thread(self._fetch_chain)
            except DeribitError as err:
                log.warning("reconcile_failed", extra={"error": str(err)[:300]})
                continue
            ended = (self.live | self.followed) - live
            for name in ended:
                self._drop_instrument(name)
            self.live = live
            if self.top_n == 0:
                self._follow(sorted(live - self.followed))
            elif time.monotonic() - last_rank >= self.opt.rerank_every_s:
                last_rank = time.monotonic()
                want = set(ranked)
                for name in self.followed - want:
                    self._drop_instrument(name)
                self._follow([n for n in ranked if n not in self.followed])
