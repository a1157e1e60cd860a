"""Run a simulator in a background thread (its own event loop): for tests and benchmarks.

    with running(SimConfig(seed=1)) as sim:
        requests.get(sim.urls["rest"] + "/public/get_time")
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from collector.sim.server import Server, SimConfig


class SimThread:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.server: Server | None = None
        self.urls: dict = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="deribit-sim", daemon=True)

    def start(self) -> "SimThread":
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.server = Server(self.cfg)
        self.urls = await self.server.start()
        self._ready.set()
        await self._stop.wait()
        await self.server.stop()

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the simulator's loop and return its result."""
        assert self.loop is not None  # started
        fut = asyncio.run_coroutine_threadsafe(_wrap(fn, *args), self.loop)
        return fut.result(10)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


async def _wrap(fn, *args):
    return fn(*args)


@contextlib.contextmanager
def running(cfg: SimConfig | None = None):
    sim = SimThread(cfg or SimConfig()).start()
    try:
        yield sim
    finally:
        sim.stop()
