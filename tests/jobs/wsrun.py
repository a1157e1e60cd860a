"""Helpers for the stream tests: a WsJob in a thread of its own, the simulator's control API, waiting."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import psycopg
import requests

from collector.config import Settings
from collector.deribit.instruments import is_option
from collector.jobs.ws import WsJob, WsOptions
from collector.sim.runner import SimThread
from collector.sim.server import SimConfig
from collector.systemd import Notifier

FAST = WsOptions(heartbeat_s=10, reconcile_every_s=2.0, rerank_every_s=2.0, status_every_s=0.5,
                 book_snapshot_every_s=2.0, backoff_initial_s=0.1, backoff_max_s=0.5, stop_timeout_s=8.0)


def start_sim(**kw) -> SimThread:
    kw.setdefault("seed", 11)
    kw.setdefault("currencies", ["BTC"])
    return SimThread(SimConfig(**kw)).start()


def control(sim: SimThread, path: str, body: dict | None = None, **params) -> dict:
    url = f"{sim.urls['control']}/{path}"
    r = requests.post(url, json=body, timeout=10) if body is not None else requests.get(url, params=params, timeout=10)
    r.raise_for_status()
    return r.json()


def rest(sim: SimThread, method: str, **params):
    r = requests.get(f"{sim.urls['rest']}/public/{method}", params=params, timeout=10)
    r.raise_for_status()
    return r.json()["result"]


def settings_for(sim: SimThread, dsn: str, spool: Path, **env) -> Settings:
    base = {"DATABASE_URL": dsn, "DERIBIT_WS_URL": sim.urls["ws"], "DERIBIT_REST_URL": sim.urls["rest"],
            "COLLECTOR_SPOOL_DIR": str(spool), "COLLECTOR_BATCH_MAX_AGE": "0.2", "COLLECTOR_CURRENCIES": "BTC",
            "WS_BTC_TOP_N_INSTRUMENTS": "0"}
    base.update({k: str(v) for k, v in env.items()})
    return Settings.load(env=base)


def wait_until(cond, timeout: float = 30.0, every: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


class JobThread:
    """``WsJob.run()`` on an event loop in a background thread; ``stop()`` is what SIGTERM does."""

    def __init__(self, settings: Settings, currency: str = "BTC", options: WsOptions = FAST,
                 notifier: Notifier | None = None, archive_dir: Path | None = None) -> None:
        self.args = (settings, currency, options, notifier, archive_dir)
        self.job: WsJob | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.rc: int | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True, name="ws-job")

    def start(self) -> "JobThread":
        self.thread.start()
        self._started.wait(10)
        return self

    def _main(self) -> None:
        async def main():
            settings, cur, options, notifier, archive_dir = self.args
            self.job = WsJob(settings, cur, options=options, notifier=notifier or Notifier({}),
                             archive_dir=archive_dir)
            self.loop = asyncio.get_running_loop()
            self._started.set()
            self.rc = await self.job.run()
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
            self._started.set()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.job.stop)
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.rc


def rows(dsn: str, query: str, *args) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, args or None).fetchall()


def sim_option_trades(sim: SimThread, currency: str = "BTC") -> set[tuple[str, int]]:
    got = control(sim, "trades", currency=currency)
    assert got["complete"], "the simulator's trade history was truncated: raise trade_history"
    return {(t["instrument_name"], t["trade_seq"]) for t in got["trades"] if is_option(t["instrument_name"])}


def db_option_trades(dsn: str, currency: str = "BTC") -> list[tuple[str, int]]:
    return [tuple(r) for r in rows(dsn, f"SELECT instrument, trade_seq FROM {currency.lower()}_option_trades")]


def process_env(sim, dsn: str, spool: Path, notify: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env.update({"DATABASE_URL": dsn, "DERIBIT_WS_URL": sim.urls["ws"], "DERIBIT_REST_URL": sim.urls["rest"],
                "COLLECTOR_SPOOL_DIR": str(spool), "COLLECTOR_BATCH_MAX_AGE": "0.2",
                "WS_BTC_TOP_N_INSTRUMENTS": "0", "COLLECTOR_CURRENCIES": "BTC"})
    if notify:
        env["NOTIFY_SOCKET"] = notify
    return env
