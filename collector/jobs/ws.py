"""`collector ws --currency CUR`: the real-time stream of one currency (systemd ``ws-collector@CUR``).

Wires :class:`~collector.deribit.session.WsSession` (connect, heartbeat, subscribe, reconnect forever) to
:class:`~collector.jobs.stream.Pipeline` (rows + continuity events) and the store's
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

The continuity work lives in :mod:`collector.jobs.ws_gaps`, the instrument lifecycle in
:mod:`collector.jobs.ws_lifecycle` (mixins of :class:`WsJob`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg

from collector import __version__
from collector.config import Settings
from collector.deribit import protocol
from collector.deribit.rest import DeribitError, RestClient
from collector.deribit.session import ConnectInfo, DisconnectInfo, WsSession
from collector.jobs import chain
from collector.jobs.archive import Archive
from collector.jobs.stream import Pipeline
from collector.jobs.ws_gaps import GapsMixin, Backfill
from collector.jobs.ws_lifecycle import LifecycleMixin
from collector.store import db, resume
from collector.store.queue import WriteQueue
from collector.store.spool import Spool
from collector.store.writer import BatchStore
from collector.systemd import Notifier

log = logging.getLogger(__name__)

UTC = timezone.utc


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True)
class WsOptions:
    """Knobs of the stream beyond Settings (tests shorten them)."""

    heartbeat_s: int = 10
    progress_window_s: float = 0.0          # no progress for this long stops WATCHDOG=1 (0: 3 heartbeats + 5 s, >= 30 s)
    reconcile_every_s: float = 300.0
    rerank_every_s: float = 900.0
    status_every_s: float = 5.0
    backfill_horizon_s: float = 86400.0     # how far back a restart fetches missed trades
    startup_replay_s: float = 20.0          # spool replay at start-up before streaming, at most
    book_snapshot_every_s: float = 60.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    stop_timeout_s: float = 8.0
    perpetual_book: bool = True


class WsJob(GapsMixin, LifecycleMixin):
    def __init__(self, settings: Settings, currency: str, *, archive_dir: Path | None = None,
                 options: WsOptions | None = None, notifier: Notifier | None = None) -> None:
        self.s = settings
        self.cur = currency
        self.opt = options or WsOptions()
        self.notifier = notifier or Notifier()
        self.job_name = f"ws:{currency}"
        self.dsn = settings.require_database_url()
        self.store = BatchStore(self.dsn, Spool(Path(settings.spool_dir) / f"ws-{currency}", settings.spool_max_bytes))
        self.queue = WriteQueue(self.store, batch_rows=settings.batch_rows, max_age_s=settings.batch_max_age_s,
                                max_rows=settings.queue_max_rows, job=self.job_name,
                                status_every_s=self.opt.status_every_s)
        self.pipeline = Pipeline(currency, self.queue.put, depth_levels=settings.depth_top_n,
                                 book_snapshot_every_s=self.opt.book_snapshot_every_s,
                                 on_trade_gap=self._on_trade_gap, on_book_break=self._on_book_break,
                                 on_state=self._on_state)
        self.archive = Archive(archive_dir, currency) if archive_dir else None
        self.session = WsSession(settings.ws_url, on_notification=self._on_notification,
                                 on_raw=self._on_raw if self.archive else None,
                                 on_connected=self._on_connected, on_disconnected=self._on_disconnected,
                                 on_bad_frame=self._on_bad_frame, heartbeat_s=self.opt.heartbeat_s,
                                 client_version=__version__, backoff_initial_s=self.opt.backoff_initial_s,
                                 backoff_max_s=self.opt.backoff_max_s, raw_data=True)
        self.top_n = settings.top_n(currency)
        self.live: set[str] = set()          # live option names
        self.followed: set[str] = set()      # options whose ticker we subscribe
        self.perpetual = f"{currency}-PERPETUAL"
        self._backfills: asyncio.Queue[Backfill] = asyncio.Queue()
        self._tasks: set[asyncio.Task] = set()
        self._resubscribing: set[str] = set()
        self._down_since: float | None = None   # last frame time before the first unanswered disconnect
        self._stored_last_quote: datetime | None = None
        self._stored_last_trade: datetime | None = None
        self._ready = False
        self._ready_waiting = False
        self._stop = asyncio.Event()
        self.gaps_recorded = 0
        self.backfilled_trades = 0
        self.bad_frames = 0
        self._fatal: BaseException | None = None

    # -- life ------------------------------------------------------------------------------------

    async def run(self, handle_signals: bool = True) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT) if handle_signals else ():
            try:
                loop.add_signal_handler(sig, self._stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        log.info("ws_starting", extra={"currency": self.cur, "top_n": self.top_n, "url": self.s.ws_url.split("?")[0]})
        await asyncio.to_thread(self._read_database_state)
        await self._choose_channels()
        workers = [
            asyncio.create_task(self.queue.run(), name="writer"),
            asyncio.create_task(self.session.run(), name="session"),
            asyncio.create_task(self._backfill_loop(), name="backfill"),
            asyncio.create_task(self._reconcile_loop(), name="reconcile"),
            asyncio.create_task(self._status_loop(), name="status"),
        ]
        stop = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stop, *workers}, return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stop and not t.cancelled() and t.exception() is not None]
        for t in failed:
            log.error("task_failed", extra={"task": t.get_name(), "error": repr(t.exception())[:500]})
        code = 1 if failed else 0
        await self._shutdown(workers, stop)
        return code

    async def _shutdown(self, workers: list[asyncio.Task], stop: asyncio.Task) -> None:
        self.notifier.stopping(self._status_text("stopping"))
        log.info("ws_stopping", extra={"queue_rows": len(self.queue)})
        self.session.stop()
        by_name = {t.get_name(): t for t in workers}
        try:
            await asyncio.wait_for(asyncio.shield(by_name["session"]), timeout=2.0)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001
            pass
        for name in ("backfill", "reconcile", "status"):
            by_name[name].cancel()
        for t in list(self._tasks):
            t.cancel()
        if self.archive:
            self.archive.close()
        await self.queue.close(timeout_s=self.opt.stop_timeout_s)
        by_name["writer"].cancel()
        by_name["session"].cancel()
        stop.cancel()
        await asyncio.gather(*workers, stop, *self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._final_status)
        self.store.close()
        log.info("ws_stopped", extra=self._counters())

    def _final_status(self) -> None:
        self.store.report_status(self.job_name, "stopped", started_at=self.queue.started_at,
                                 rows_dropped=self.queue.dropped, queue_rows=len(self.queue),
                                 **self.queue.status_fields)

    def _spawn(self, coro, name: str) -> None:
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
            seqs, self._stored_last_trade, self._stored_last_quote = resume.stream_baselines(
                self.dsn, self.cur, self.opt.backfill_horizon_s)
        except psycopg.Error as err:
            log.warning("database_state_unavailable", extra={"error": str(err).strip()[:300],
                                                             "action": "starting without stored baselines"})
            return
        self.pipeline.seed_trades(seqs)
        log.info("database_state", extra={"instruments_seeded": len(seqs),
                                          "last_trade": str(self._stored_last_trade),
                                          "last_quote": str(self._stored_last_quote)})

    def _rest(self) -> RestClient:
        return RestClient.from_settings(self.s)

    def _fetch_chain(self) -> tuple[set[str], list[str]]:
        with self._rest() as client:
            live = chain.live_names(client.get_instruments(self.cur, kind="option"))
            ranked = chain.rank_options(client.get_book_summary_by_currency(self.cur, kind="option"), self.top_n)
        return live, [n for n in ranked if n in live]

    async def _choose_channels(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self.live, chosen = await asyncio.to_thread(self._fetch_chain)
                break
            except DeribitError as err:
                attempt += 1
                log.error("instruments_unavailable", extra={"error": str(err)[:300], "attempt": attempt,
                                                            "action": "retrying; streaming trades and index meanwhile"})
                if attempt >= 3:
                    chosen = []
                    break
                await asyncio.sleep(min(30.0, 2.0 ** attempt))
        else:
            return
        self.followed = set(chosen)
        self.session.want(self._base_channels())
        self.session.want(protocol.ticker_channel(n) for n in chosen)

    def _base_channels(self) -> list[str]:
        chans = [
            protocol.trades_channel("option", self.cur),
            protocol.price_index_channel(self.cur),
            protocol.instrument_state_channel("option", self.cur),
            protocol.instrument_state_channel("future", self.cur),
        ]
        if self.opt.perpetual_book:
            chans.append(protocol.book_channel(self.perpetual))
        return chans

    # -- the hot path --------------------------------------------------------------------------------

    def _on_notification(self, channel: str, data: Any, recv: float) -> None:
        self.pipeline.handle(channel, data)

    def _on_raw(self, raw: Any, recv: float) -> None:
        self.archive.add(raw, recv)

    def _on_bad_frame(self, reason: str, raw: Any) -> None:
        self.bad_frames += 1
        self.pipeline.bad_message(f"frame: {reason}", "")

    # -- connection events -----------------------------------------------------------------------------

    async def _on_connected(self, info: ConnectInfo) -> None:
        up = _utc(info.subscribed_at)
        if info.number == 1:
            if self._stored_last_quote is not None and self._stored_last_quote < up:
                self._gap(f"{self.cur.lower()}_option_quotes", "", self._stored_last_quote, up, "restart", False,
                          details="quotes cannot be fetched back from Deribit")
            if self._stored_last_trade is not None:
                start = max(self._stored_last_trade, up - timedelta(seconds=self.opt.backfill_horizon_s))
                self._backfills.put_nowait(Backfill("time", "", start, up, cause="restart"))
        elif self._down_since is not None:
            down = _utc(self._down_since)
            cause = "disconnect"
            self._gap(f"{self.cur.lower()}_option_quotes", "", down, up, cause, False,
                      details="quotes cannot be fetched back from Deribit")
            self._gap("index_prices", f"{self.cur.lower()}_usd", down, up, cause, False,
                      details="index ticks cannot be fetched back (rest job records 1/min)")
            self._backfills.put_nowait(Backfill("time", "", down - timedelta(seconds=1),
                                                 up + timedelta(seconds=1), cause=cause))
        self._down_since = None
        if info.refused:
            for ch in info.refused:
                self._forget_channel(ch)
        if not self._ready and not self._ready_waiting:
            self._ready_waiting = True
            self._spawn(self._ready_when_database(), "ready-wait")

    async def _ready_when_database(self) -> None:
        """READY=1 once the database answers (the subscriptions already have); checked every 2 s."""
        while not await asyncio.to_thread(self._database_reachable):
            await asyncio.sleep(2.0)
        if not self._ready:
            self._ready = True
            self.notifier.ready(self._status_text("running"))
            log.info("ready", extra={"channels": len(self.session.subscribed)})

    def _database_reachable(self) -> bool:
        try:
            with db.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _on_disconnected(self, info: DisconnectInfo) -> None:
        if self._stop.is_set():
            return
        if self._down_since is None:
            self._down_since = info.last_frame_at or info.at
        self.pipeline.reset_books()
        log.warning("ws_disconnected", extra={"connection": info.number, "reason": info.reason[:300]})

    # -- health ---------------------------------------------------------------------------------------------

    def _counters(self) -> dict:
        c = self.pipeline.counts
        return {"frames": self.session.frames, "quotes": c["quotes"], "trades": c["trades"],
                "index": c["index"], "book": c["book"], "trade_gaps": c["trade_gaps"],
                "backfilled_trades": self.backfilled_trades, "gaps_recorded": self.gaps_recorded,
                "bad_messages": sum(self.pipeline.bad.values()), "connects": self.session.connects,
                "followed": len(self.followed), "written": self.store.stats.inserted,
                "spooled": self.store.stats.spooled, "dropped": self.queue.dropped, "queue": len(self.queue)}

    def _status_text(self, state: str) -> str:
        c = self._counters()
        return (f"{state}: {c['followed']} options, {c['frames']} frames, {c['quotes']} quotes, {c['trades']} trades, "
                f"{c['written']} rows written, {c['spooled']} spooled, {c['dropped']} dropped, "
                f"{c['gaps_recorded']} gaps")

    def _progressing(self, window_s: float) -> bool:
        """Frames arrive (or heartbeats are answered) and the writer keeps committing or spooling."""
        now = time.monotonic()
        stream_ok = now - self.session.last_progress < window_s
        writer_ok = not len(self.queue) or now - self.queue.last_flush_ok < window_s
        return stream_ok and writer_ok

    async def _status_loop(self) -> None:
        interval = self.notifier.watchdog_interval_s or self.opt.status_every_s
        interval = min(interval, self.opt.status_every_s)
        window = self.opt.progress_window_s or max(3 * self.opt.heartbeat_s + 5, 30.0)
        warned = False
        while True:
            await asyncio.sleep(interval)
            c = self._counters()
            self.queue.status_fields = {
                "last_message_at": _utc(self.session.last_frame_at) if self.session.last_frame_at else None,
                "details": {**c, "host": socket.gethostname(), "bad": dict(self.pipeline.bad.most_common(10))},
            }
            ok = self._progressing(window)
            if ok:
                self.notifier.watchdog()
                warned = False
            elif not warned:
                warned = True
                log.error("no_progress", extra={"action": "not petting the watchdog", **c})
            self.notifier.status(self._status_text("running" if ok else "stalled"))


def run(settings: Settings, currency: str, archive_dir: Path | None = None,
        options: WsOptions | None = None) -> int:
    """Entry point of `collector ws`: runs until SIGTERM/SIGINT; uvloop when available."""
    job = WsJob(settings, currency, archive_dir=archive_dir, options=options)
    try:
        import uvloop
        return uvloop.run(job.run())
    except ImportError:
        return asyncio.run(job.run())
