"""`collector run-all`: every job in one foreground process, on the cadences the systemd timers use.

For a laptop or a host without systemd: one ``collector ws`` stream per configured currency (in this
process's event loop) plus the REST passes on their schedules -- ``rest`` every minute (the shortest
``REST_*_INTERVAL``), ``depth`` every 5 minutes, ``greeks`` every ``GREEKS_INTERVAL`` (1 h), ``funding`` every
``FUNDING_INTERVAL`` (8 h) -- the cadences ``collector config timers`` gives the systemd timers -- each also once at
start. Passes run one at a time, in turn (they share Deribit's credit budget, so running them side by
side would not finish them sooner; one at a time keeps the every-minute pass on time): at start rest,
funding, depth, greeks. SIGINT/SIGTERM (or ``--for``) stop everything cleanly: the streams flush or spool their queues; a
REST pass still running is abandoned (it runs in a daemon thread; what it committed is kept and the
next pass resumes from the newest stored row).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from typing import Any, Callable

from collector.config import Settings
from collector.jobs.ws import WsJob, WsOptions

log = logging.getLogger(__name__)


def _rest_jobs(settings: Settings) -> list[tuple[str, Callable[[Settings], Any], float]]:
    from collector.jobs import depth, funding, greeks, rest

    rest_every = min(settings.rest_perpetual_interval_s, settings.rest_futures_interval_s,
                     settings.rest_options_ohlcv_interval_s)   # the pass fetches each kind when it is due
    return [
        ("rest", rest.run, rest_every),
        ("funding", funding.run, settings.funding_interval_s),
        ("depth", depth.run, 300.0),
        ("greeks", greeks.run, settings.greeks_interval_s),
    ]


async def _in_daemon_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a daemon thread (so an abandoned pass never holds the process at exit)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def target() -> None:
        try:
            res = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the loop
            def fail(e: BaseException = exc) -> None:
                if not fut.done():
                    fut.set_exception(e)
            loop.call_soon_threadsafe(fail)
        else:
            def succeed() -> None:
                if not fut.done():
                    fut.set_result(res)
            loop.call_soon_threadsafe(succeed)

    threading.Thread(target=target, daemon=True, name="rest-pass").start()
    return await fut


class RunAll:
    def __init__(self, settings: Settings, *, run_for_s: float | None = None,
                 ws_options: WsOptions | None = None, jobs: list | None = None) -> None:
        self.s = settings
        self.run_for_s = run_for_s
        self.ws_options = ws_options
        self.jobs = jobs if jobs is not None else _rest_jobs(settings)
        self._stop = asyncio.Event()
        self._turn = asyncio.Lock()      # one REST pass at a time (FIFO)
        self.passes: dict[str, list[int]] = {name: [] for name, _, _ in self.jobs}   # exit codes
        self.streams: list[WsJob] = []

    def stop(self) -> None:
        self._stop.set()

    async def _every(self, name: str, fn: Callable[[Settings], Any], interval_s: float) -> None:
        """Once now, then at every multiple of ``interval_s`` (UTC-aligned, + a few seconds)."""
        offset = 5.0 if interval_s >= 60 else 0.0
        while not self._stop.is_set():
            async with self._turn:
                if self._stop.is_set():
                    return
                started = time.monotonic()
                code = await self._one(name, fn)
            self.passes[name].append(code)
            log.info("pass_done", extra={"job": name, "exit_code": code,
                                         "seconds": round(time.monotonic() - started, 2)})
            now = time.time()
            wait = interval_s - (now % interval_s) + offset
            if wait > interval_s:
                wait -= interval_s
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=max(wait, 1.0))
            except asyncio.TimeoutError:
                pass

    async def _drain(self) -> None:
        """Wait until no pass holds the turn, then keep the turn so no new pass starts."""
        await self._turn.acquire()
        self._stop.set()

    async def _one(self, name: str, fn: Callable[[Settings], Any]) -> int:
        try:
            outcome = await _in_daemon_thread(lambda: fn(self.s))
            return getattr(outcome, "exit_code", outcome)
        except Exception as err:  # noqa: BLE001 - a failing pass never stops the others
            log.error("pass_failed", extra={"job": name, "error": repr(err)[:500]})
            return 1

    async def _monitor(self) -> None:
        """The health check every COLLECTOR_MONITOR_EVERY (first after one interval: the jobs need time to
        write): warnings in the log, alerts when configured (collector/ops/alert.py)."""
        from collector.ops import alert

        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.s.monitor_every_s)
                return
            except asyncio.TimeoutError:
                pass
            try:
                report = await _in_daemon_thread(lambda: alert.check(self.s, "run-all"))
                log.info("health_checked", extra={"ok": report.ok, "failed": [c.name for c in report.failures]})
            except Exception as err:  # noqa: BLE001 - a failing check never stops the jobs
                log.error("health_check_error", extra={"error": repr(err)[:500]})

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        log.info("run_all_starting", extra={"currencies": list(self.s.currencies),
                                            "jobs": [n for n, _, _ in self.jobs], "for_s": self.run_for_s})
        self.streams = [WsJob(self.s, cur, options=self.ws_options) for cur in self.s.currencies]
        ws_tasks = [asyncio.create_task(j.run(handle_signals=False), name=f"ws:{j.cur}") for j in self.streams]
        rest_tasks = [asyncio.create_task(self._every(n, fn, iv), name=n) for n, fn, iv in self.jobs]
        rest_tasks.append(asyncio.create_task(self._monitor(), name="monitor"))
        timeout = self.run_for_s
        stop = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stop, *ws_tasks}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done and self._turn.locked():
            # --for ran out in the middle of a REST pass: let it finish (its rows are the point of a
            # timed run), within reason; a signal stops at once
            log.info("run_all_finishing_pass", extra={"max_wait_s": 60})
            try:
                await asyncio.wait_for(self._drain(), timeout=60)
            except asyncio.TimeoutError:
                pass
        failed = [t for t in ws_tasks if t in done]
        for t in failed:
            log.error("stream_ended", extra={"task": t.get_name(), "result": repr(t.exception() or t.result())})
        self._stop.set()
        for j in self.streams:
            j.stop()
        codes = await asyncio.gather(*ws_tasks, return_exceptions=True)
        for task in rest_tasks:
            task.cancel()
        await asyncio.gather(*rest_tasks, stop, return_exceptions=True)
        log.info("run_all_stopped", extra={"passes": {k: len(v) for k, v in self.passes.items()}})
        return 1 if failed or any(c != 0 for c in codes) else 0


def run(settings: Settings, run_for_s: float | None = None) -> int:
    runner = RunAll(settings, run_for_s=run_for_s)
    try:
        import uvloop
        return uvloop.run(runner.run())
    except ImportError:
        return asyncio.run(runner.run())
