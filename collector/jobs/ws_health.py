"""The stream's health: systemd (READY, WATCHDOG only while work progresses, STATUS, STOPPING) and the
job's ``collector_status`` row, kept off the data path.

:class:`Health` reads the job's counters through a callable and the progress of the stream and of the
writer through public attributes; it never touches the rows. WATCHDOG=1 is sent only while frames
arrive (or heartbeats are answered) and the writer commits or spools, so a stuck process is restarted.
The status row is written by its own task, so a database that hangs never holds up the watchdog.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import datetime, timezone
from typing import Any, Callable

import psycopg

from collector.deribit.session import WsSession
from collector.store import db
from collector.store.queue import WriteQueue
from collector.systemd import Notifier

log = logging.getLogger("collector.jobs.ws")
UTC = timezone.utc


class Health:
    def __init__(self, job: str, dsn: str, notifier: Notifier, session: WsSession, queue: WriteQueue,
                 counters: Callable[[], dict[str, Any]], bad_reasons: Callable[[], dict[str, int]], *,
                 status_every_s: float = 5.0, progress_window_s: float = 30.0) -> None:
        self.job = job
        self._dsn = dsn
        self._notifier = notifier
        self._session = session
        self._queue = queue
        self._counters = counters
        self._bad_reasons = bad_reasons
        self._every = status_every_s
        self._window = progress_window_s
        self.started_at = datetime.now(UTC)
        self.ready = False
        self._ready_waiting = False

    # -- READY ------------------------------------------------------------------------------------

    def subscribed(self, spawn: Callable[..., None]) -> None:
        """The subscriptions are answered: READY once the database answers too."""
        if not self.ready and not self._ready_waiting:
            self._ready_waiting = True
            spawn(self._ready_when_database(), "ready-wait")

    async def _ready_when_database(self) -> None:
        """READY=1 once the database answers (the subscriptions already have); checked every 2 s."""
        while not await asyncio.to_thread(self._database_reachable):
            await asyncio.sleep(2.0)
        if not self.ready:
            self.ready = True
            self._notifier.ready(self.status_text("running"))
            log.info("ready", extra={"channels": len(self._session.subscribed)})

    def _database_reachable(self) -> bool:
        try:
            with db.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    # -- STATUS / WATCHDOG ------------------------------------------------------------------------

    def status_text(self, state: str) -> str:
        c = self._counters()
        return (f"{state}: {c['followed']} options, {c['frames']} frames, {c['quotes']} quotes, {c['trades']} trades, "
                f"{c['written']} rows written, {c['spooled']} spooled, {c['dropped']} dropped, "
                f"{c['gaps_recorded']} gaps")

    def progressing(self) -> bool:
        """Frames arrive (or heartbeats are answered) and the writer keeps committing or spooling."""
        now = time.monotonic()
        stream_ok = now - self._session.last_progress < self._window
        writer_ok = not len(self._queue) or now - self._queue.last_flush_ok < self._window
        return stream_ok and writer_ok

    async def run(self) -> None:
        """Pet the watchdog while work progresses; STATUS= every few seconds (a task of the job)."""
        interval = min(self._notifier.watchdog_interval_s or self._every, self._every)
        warned = False
        while True:
            await asyncio.sleep(interval)
            ok = self.progressing()
            if ok:
                self._notifier.watchdog()
                warned = False
            elif not warned:
                warned = True
                log.error("no_progress", extra={"action": "not petting the watchdog", **self._counters()})
            self._notifier.status(self.status_text("running" if ok else "stalled"))

    def stopping(self) -> None:
        self._notifier.stopping(self.status_text("stopping"))

    # -- collector_status -------------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        c = self._counters()
        last = self._session.last_frame_at
        return {"started_at": self.started_at, "rows_dropped": self._queue.dropped, "queue_rows": len(self._queue),
                "rate_limited": c.get("rate_limited", 0),
                "last_message_at": datetime.fromtimestamp(last, UTC) if last else None,
                "details": {**c, "host": socket.gethostname(), "bad": self._bad_reasons()}}

    def report(self, state: str | None = None) -> bool:
        """Upsert the status row now (blocking: call it in a thread); False while the database is away."""
        return self._queue.store.report_status(self.job, state or self._queue.state(), **self._row())

    async def report_loop(self) -> None:
        """The status row every few seconds (a task of the job)."""
        while True:
            await asyncio.sleep(self._every)
            await asyncio.to_thread(self.report)
