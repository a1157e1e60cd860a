"""`collector ws --currency CUR`: the real-time stream of one currency (systemd ``ws-collector@CUR``).

Wires :class:`~collector.deribit.session.WsSession` (connect, heartbeat, subscribe, reconnect forever) to
:class:`~collector.deribit.pipeline.Pipeline` (rows + continuity events) and the store's
:class:`~collector.store.queue.WriteQueue` (COPY, or the spool while the database is away).

Continuity (nothing is lost silently):

* a ``trade_seq`` jump -> the missing trades are fetched over REST by sequence and written; a
  ``data_gaps`` row says so (``backfilled_at`` set, or NULL when the fetch failed for good);
* a disconnect -> the option trades of the dark period are fetched over REST by time; quotes and index
  prices cannot be fetched back, so each gets a ``data_gaps`` row with the exact period and
  ``recoverable = false``; a restart does the same from the newest stored rows;
* a book ``change_id`` break -> that one channel is resubscribed (a fresh snapshot), and noted;
* listings and expiries follow ``instrument.state.*`` and a periodic ``get_instruments`` reconcile.

systemd: READY=1 once the database is reachable and the first subscriptions are answered; WATCHDOG=1 only
while frames arrive (or heartbeats are answered) and writes succeed or spool; STATUS= with counters;
SIGTERM -> STOPPING=1, the queue is flushed (or spooled) and the process exits 0.

This module is the wiring. The collaborators own their state and talk through small interfaces:
:class:`~collector.deribit.pipeline.Pipeline` (pure: frames in, rows and continuity events out),
:class:`~collector.jobs.ws_continuity.Continuity` (gaps and backfill),
:class:`~collector.jobs.ws_lifecycle.Lifecycle` (which channels to follow),
:class:`~collector.jobs.ws_health.Health` (systemd and the status row); the start-up state is read
through :mod:`collector.store.resume`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Coroutine

import psycopg

from collector import __version__
from collector.config import Settings
from collector.deribit.instruments import currency
from collector.deribit.pipeline import Pipeline
from collector.deribit.rest import RestClient, RestCounts
from collector.deribit.session import ConnectInfo, DisconnectInfo, WsSession
from collector.jobs import chain
from collector.jobs.archive import Archive
from collector.jobs.ws_continuity import Continuity
from collector.jobs.ws_health import Health
from collector.jobs.ws_lifecycle import Lifecycle
from collector.jobs.ws_reconcile import TradeReconcile
from collector.log import bad_message as log_bad_message
from collector.records import PerpetualQuote
from collector.store import resume
from collector.store.queue import WriteQueue
from collector.store.spool import Spool
from collector.store.writer import BatchStore
from collector.systemd import Notifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WsOptions:
    """Knobs of the stream beyond Settings (tests shorten them)."""

    heartbeat_s: int = 10
    progress_window_s: float = 0.0          # no progress for this long stops WATCHDOG=1 (0: 3 heartbeats + 5 s, >= 30 s)
    reconcile_every_s: float = 300.0
    trades_reconcile_every_s: float = 300.0  # the newest trades over REST vs the last trade_seq seen
    rerank_every_s: float = 900.0
    status_every_s: float = 5.0
    backfill_horizon_s: float = 86400.0     # how far back a restart fetches missed trades
    startup_replay_s: float = 20.0          # spool replay at start-up before streaming, at most
    book_snapshot_every_s: float = 60.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    stop_timeout_s: float = 8.0
    perpetual_book: bool = True


class WsJob:
    def __init__(self, settings: Settings, currency: str, *, archive_dir: Path | None = None,
                 options: WsOptions | None = None, notifier: Notifier | None = None) -> None:
        self.s = settings
        self.cur = currency
        self.opt = opt = options or WsOptions(**settings.ws_options())
        self.job_name = f"ws:{currency}"
        self.dsn = settings.require_database_url()
        self.store = BatchStore(self.dsn, Spool(Path(settings.spool_dir) / f"ws-{currency}", settings.spool_max_bytes))
        self.queue = WriteQueue(self.store, batch_rows=settings.batch_rows, max_age_s=settings.batch_max_age_s,
                                max_rows=settings.queue_max_rows)
        self.archive = Archive(archive_dir, currency) if archive_dir else None
        self.session = WsSession(settings.ws_url, on_notification=self._on_notification,
                                 on_raw=self._on_raw if self.archive else None,
                                 on_connected=self._on_connected, on_disconnected=self._on_disconnected,
                                 on_bad_frame=self._on_bad_frame, heartbeat_s=opt.heartbeat_s,
                                 client_version=__version__, backoff_initial_s=opt.backoff_initial_s,
                                 backoff_max_s=opt.backoff_max_s, raw_data=True)
        self.rest_counts = RestCounts()   # every REST client of the job: requests, rate-limit answers
        self.continuity = Continuity(currency, self.queue.put, self.rest_client,
                                     spawn=self._spawn, resubscribe=self.session.resubscribe,
                                     advance_trades=lambda inst, seqs: self.pipeline.advance_trades(inst, seqs),
                                     backfill_horizon_s=opt.backfill_horizon_s)
        self.pipeline = Pipeline(currency, self.queue.put, depth_levels=settings.depth_top_n,
                                 book_snapshot_every_s=opt.book_snapshot_every_s,
                                 on_trade_gap=self.continuity.on_trade_gap,
                                 on_book_break=self.continuity.on_book_break,
                                 on_state=lambda st: self.lifecycle.on_state(st), on_bad=log_bad_message)
        self.lifecycle = Lifecycle(currency, settings.top_n(currency), self.session, fetch_chain=self._fetch_chain,
                                   forget_instrument=self.pipeline.forget, spawn=self._spawn,
                                   reconcile_every_s=opt.reconcile_every_s, rerank_every_s=opt.rerank_every_s,
                                   perpetual_book=opt.perpetual_book)
        self.trade_reconcile = TradeReconcile(
            currency, self.queue.put, self.rest_client,
            last_seq=lambda inst: self.pipeline.advance_trades(inst, []),   # nothing new: just the baseline
            advance=lambda inst, seqs: self.pipeline.advance_trades(inst, seqs),
            on_gap=self.continuity.on_trade_gap, gap=self.continuity.gap, every_s=opt.trades_reconcile_every_s,
            is_up=lambda: self.session.connected)
        self.health = Health(self.job_name, self.dsn, notifier or Notifier(settings.systemd), self.session, self.queue,
                             self.counters, lambda: dict(self.pipeline.bad.most_common(10)),
                             status_every_s=opt.status_every_s,
                             progress_window_s=opt.progress_window_s or max(3 * opt.heartbeat_s + 5, 30.0))
        self._tasks: set[asyncio.Task] = set()
        self._stop = asyncio.Event()
        self.bad_frames = 0

    # -- what others may ask ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """READY=1 was sent: subscribed, and the database answers."""
        return self.health.ready

    @property
    def followed(self) -> set[str]:
        return self.lifecycle.followed

    def stop(self) -> None:
        """What SIGTERM does: flush (or spool) and end :meth:`run` with 0."""
        self._stop.set()

    def counters(self) -> dict[str, Any]:
        c = self.pipeline.counts
        st = self.store.stats
        return {"frames": self.session.frames, "quotes": c["quotes"], "trades": c["trades"],
                "index": c["index"], "book": c["book"], "trade_gaps": c["trade_gaps"],
                "perpetual_quotes": c["perpetual_quotes"], "perpetual_trades": c["perpetual_trades"],
                "backfilled_trades": self.continuity.backfilled_trades,
                "reconciled_trades": self.trade_reconcile.recovered,
                "gaps_recorded": self.continuity.gaps_recorded,
                "bad_messages": sum(self.pipeline.bad.values()), "connects": self.session.connects,
                "followed": len(self.lifecycle.followed), "written": st.inserted,
                "spooled": st.spooled, "dropped": self.queue.dropped, "queue": len(self.queue),
                "spool_write_failures": self.store.spool.write_failures, "corrupt_segments": st.corrupt_segments,
                "segments_kept": st.segments_kept, "rows_lost": st.rows_lost,
                "rest_requests": self.rest_counts.requests, "rate_limited": self.rest_counts.rate_limited}

    def rest_client(self) -> RestClient:
        """A REST client of this job (the host's credit budget; counted in ``rest_counts``)."""
        return RestClient.from_settings(self.s, counts=self.rest_counts)

    # -- life ------------------------------------------------------------------------------------

    async def run(self, handle_signals: bool = True) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT) if handle_signals else ():
            try:
                loop.add_signal_handler(sig, self.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        log.info("ws_starting", extra={"currency": self.cur, "top_n": self.lifecycle.top_n,
                                       "url": self.s.ws_url.split("?")[0]})
        await asyncio.to_thread(self._read_database_state)
        await self.lifecycle.choose(self._stop)
        workers = [
            asyncio.create_task(self.queue.run(), name="writer"),
            asyncio.create_task(self.session.run(), name="session"),
            asyncio.create_task(self.continuity.run(), name="backfill"),
            asyncio.create_task(self.lifecycle.run(), name="reconcile"),
            asyncio.create_task(self.trade_reconcile.run(), name="trade-reconcile"),
            asyncio.create_task(self.health.run(), name="status"),
            asyncio.create_task(self.health.report_loop(), name="status-row"),
        ]
        stop = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stop, *workers}, return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stop and not t.cancelled() and t.exception() is not None]
        for t in failed:
            log.error("task_failed", extra={"task": t.get_name(), "error": repr(t.exception())[:500]})
        code = 1 if failed else 0
        await self._shutdown(workers, stop, state="failed" if failed else "stopped")
        return code

    async def _shutdown(self, workers: list[asyncio.Task], stop: asyncio.Task, state: str = "stopped") -> None:
        # each step that can fail is logged and passed: the queue below must be flushed whatever happens
        self._step("systemd", self.health.stopping)
        log.info("ws_stopping", extra={"queue_rows": len(self.queue)})
        self._step("session", self.session.stop)
        by_name = {t.get_name(): t for t in workers}
        done, _ = await asyncio.wait({by_name["session"]}, timeout=2.0)
        if not done:
            log.warning("session_stop_slow", extra={"timeout_s": 2.0, "action": "cancelling it"})
        for name in ("backfill", "reconcile", "trade-reconcile", "status", "status-row"):
            by_name[name].cancel()
        for t in list(self._tasks):
            t.cancel()
        if self.archive:
            self._step("archive", self.archive.close)
        try:
            await self.queue.close(timeout_s=self.opt.stop_timeout_s)
            gaps = self.queue.take_gaps()   # drops that no later flush carried out
            if gaps:
                await asyncio.to_thread(self.store.write, gaps)
        except Exception as err:  # noqa: BLE001 - logged; the status row and the exit still happen
            log.error("shutdown_step_failed", extra={"step": "queue", "error": f"{type(err).__name__}: {err}"[:300]})
        by_name["writer"].cancel()
        by_name["session"].cancel()
        stop.cancel()
        for t, res in zip([*workers, stop], await asyncio.gather(*workers, stop, return_exceptions=True)):
            if isinstance(res, Exception):
                log.log(logging.WARNING if t.get_name() == "session" else logging.ERROR, "task_failed_at_stop",
                        extra={"task": t.get_name(), "error": repr(res)[:500]})
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if not await asyncio.to_thread(self.health.report, state):   # "failed": `db status` and the monitor see it
            log.warning("final_status_not_written", extra={"reason": "database unavailable"})
        self.store.close()
        log.info("ws_stopped", extra=self.counters())

    def _step(self, step: str, fn: Callable[[], Any]) -> None:
        """One shutdown step: a failure is one error line naming it, and the shutdown goes on."""
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - the queue must still be flushed after any failing step
            log.error("shutdown_step_failed", extra={"step": step, "error": f"{type(err).__name__}: {err}"[:300]})

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        t = asyncio.create_task(coro, name=name)
        self._tasks.add(t)
        t.add_done_callback(self._task_done)

    def _task_done(self, t: asyncio.Task) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("task_failed", extra={"task": t.get_name(), "error": repr(t.exception())[:500]})

    # -- start-up ----------------------------------------------------------------------------------

    def _read_database_state(self) -> None:
        """Replay the spool; the last stored trade_seq per instrument and the newest rows' times."""
        try:
            # what the spool holds first, so the baselines below see it -- within a bound, so a large
            # spool never holds up the stream (the writer replays the rest as it goes; the baselines are
            # then older, which only makes the restart backfill fetch more, never less)
            self.store.replay(max_seconds=self.opt.startup_replay_s)
            seqs, last_trade, last_quote = resume.stream_baselines(self.dsn, self.cur, self.opt.backfill_horizon_s)
            perp = currency(self.cur).perpetual   # SOL_USDC-PERPETUAL for a linear base
            last_perp_quote = resume.latest_timestamps(self.dsn, PerpetualQuote, [perp]).get(perp)
        except psycopg.Error as err:
            log.warning("database_state_unavailable", extra={"error": str(err).strip()[:300],
                                                             "action": "starting without stored baselines"})
            return
        self.pipeline.seed_trades(seqs)
        self.trade_reconcile.seeded(seqs)
        self.continuity.set_baselines(last_trade, last_quote, last_perp_quote)
        log.info("database_state", extra={"instruments_seeded": len(seqs), "last_trade": str(last_trade),
                                          "last_quote": str(last_quote)})

    def _fetch_chain(self) -> tuple[set[str], list[str]]:
        with self.rest_client() as client:   # SOL's options: listed under USDC, kept by name
            return chain.fetch_chain(client, self.cur, self.lifecycle.top_n)

    # -- the hot path --------------------------------------------------------------------------------

    def _on_notification(self, channel: str, data: Any, recv: float) -> None:
        self.pipeline.handle(channel, data)

    def _on_raw(self, raw: Any, recv: float) -> None:
        assert self.archive is not None
        self.archive.add(raw, recv)

    def _on_bad_frame(self, reason: str, raw: Any) -> None:
        self.bad_frames += 1
        self.pipeline.bad_message(f"frame: {reason}", "")

    # -- connection events -----------------------------------------------------------------------------

    async def _on_connected(self, info: ConnectInfo) -> None:
        self.trade_reconcile.connected(info.subscribed_at)
        self.continuity.connected(info)
        for ch in info.refused:
            self.lifecycle.forget_channel(ch)
        self.health.subscribed(self._spawn)

    def _on_disconnected(self, info: DisconnectInfo) -> None:
        if self._stop.is_set():
            return
        self.continuity.disconnected(info)
        self.pipeline.reset_books()
        log.warning("ws_disconnected", extra={"connection": info.number, "reason": info.reason[:300]})


def run(settings: Settings, currency: str, archive_dir: Path | None = None,
        options: WsOptions | None = None) -> int:
    """Entry point of `collector ws`: runs until SIGTERM/SIGINT; uvloop when available."""
    job = WsJob(settings, currency, archive_dir=archive_dir, options=options)
    try:
        import uvloop
        return uvloop.run(job.run())
    except ImportError:
        return asyncio.run(job.run())
