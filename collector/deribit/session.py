"""The Deribit WebSocket session: connect, heartbeat, subscribe, reconnect -- forever.

A thin I/O adapter around the pure pieces (:mod:`protocol` builds requests, :mod:`frames` decodes and
classifies, :mod:`wsframes` reads WebSocket frames; :mod:`wsconn` is the socket: websockets' handshake,
then every message of a socket read handed over at once). :class:`WsSession` keeps the set of channels
the owner *wants*; every (re)connection sends ``public/hello``, ``public/set_heartbeat`` and subscribes
all of them again, in batches within Deribit's limits (<= 250 channels and < 32 kB a frame, a few
subscribe requests a second), checking every result. Every ``test_request`` is answered with
``public/test`` at once, from the reading task.

Failures never end :meth:`WsSession.run`: a refused connection, a close, a silent socket (no frame for
``3 x heartbeat``: Deribit's heartbeats are the keepalive, no WebSocket pings are sent) or a failed
set-up all lead to a reconnect after a capped exponential backoff with full jitter. The owner hears about
it through callbacks, called from the reading task (keep them short):

* ``on_notification(channel, data, recv_time)`` -- every subscription notification (the hot path);
  ``data`` is the decoded object, or with ``raw_data=True`` the still-encoded JSON (a ``msgspec.Raw``,
  see :func:`frames.split_notification`) so the owner decodes it straight into the type it needs;
* ``on_raw(raw, recv_time)``                  -- every frame as received (for an archive), optional;
* ``on_connected(info)`` / ``on_disconnected(info)`` -- with the times the owner needs to record a gap;
* ``on_bad_frame(reason, raw)``               -- undecodable or unclassifiable frames (never fatal).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

import websockets

from collector.backoff import full_jitter
from collector.deribit import protocol, wsconn
from collector.deribit.frames import DecodeError, Heartbeat, Response, Unknown, classify, decode, split_notification
from collector.deribit.ratelimit import is_rate_limited
from collector.errors import CollectorError

__all__ = ["RpcFailed", "ConnectionLost", "ConnectInfo", "DisconnectInfo", "WsSession"]

log = logging.getLogger(__name__)


class RpcFailed(CollectorError):
    """A request was answered with an error object."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method, self.code, self.message = method, code, message


class ConnectionLost(CollectorError):
    """The connection went away before a request was answered."""


@dataclass(frozen=True)
class ConnectInfo:
    number: int                 # 1 for the first connection of this process, then 2, 3, ...
    connected_at: float         # wall-clock time the socket opened
    subscribed_at: float        # wall-clock time every subscribe request was answered
    channels: int               # channels accepted
    refused: tuple[str, ...]    # channels asked for and not accepted


@dataclass(frozen=True)
class DisconnectInfo:
    number: int
    reason: str
    last_frame_at: float | None  # wall-clock receive time of the last frame of that connection
    at: float                    # when the loss was noticed


@dataclass
class _Conn:
    ws: Any
    number: int
    ids: protocol.RequestIds = field(default_factory=protocol.RequestIds)
    pending: dict[int, tuple[str, asyncio.Future]] = field(default_factory=dict)
    last_frame_at: float | None = None


class WsSession:
    def __init__(self, url: str, *, on_notification: Callable[[str, Any, float], None],
                 on_raw: Callable[[Any, float], None] | None = None,
                 on_connected: Callable[[ConnectInfo], Awaitable[None] | None] | None = None,
                 on_disconnected: Callable[[DisconnectInfo], None] | None = None,
                 on_bad_frame: Callable[[str, Any], None] | None = None,
                 heartbeat_s: float = 10, client_name: str = "deribit-collector", client_version: str = "",
                 backoff_initial_s: float = 1.0, backoff_max_s: float = 60.0,
                 subscribe_interval_s: float = 0.35, request_timeout_s: float = 15.0,
                 open_timeout_s: float = 15.0, max_queue: int = 4096, raw_data: bool = False) -> None:
        self.url = url
        self.on_notification = on_notification
        self.raw_data = raw_data
        self.on_raw = on_raw
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.on_bad_frame = on_bad_frame
        self.heartbeat_s = heartbeat_s
        self.client_name, self.client_version = client_name, client_version
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.subscribe_interval_s = subscribe_interval_s
        self.request_timeout_s = request_timeout_s
        self.open_timeout_s = open_timeout_s
        self.max_queue = max_queue
        self.wanted: dict[str, None] = {}      # ordered set of channels to keep subscribed
        self.subscribed: set[str] = set()      # accepted on the current connection
        self._conn: _Conn | None = None
        self._numbers = 0
        self._stop = asyncio.Event()
        self._sub_lock = asyncio.Lock()        # one subscribe/unsubscribe exchange at a time
        # counters (STATUS= and collector_status read these)
        self.frames = 0
        self.heartbeats_answered = 0
        self.last_frame_at: float | None = None       # wall clock
        self.last_progress = time.monotonic()         # a frame arrived or a heartbeat was answered
        self.connects = 0
        self.disconnects = 0

    # -- the owner's API ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def want(self, channels: Iterable[str]) -> None:
        """Add channels to the wanted set without sending anything (before :meth:`run`)."""
        for ch in channels:
            self.wanted[ch] = None

    def forget(self, channel: str) -> None:
        """Stop wanting a channel without sending anything (e.g. one the server refused)."""
        self.wanted.pop(channel, None)

    async def subscribe(self, channels: Iterable[str]) -> list[str]:
        """Want these channels and, when connected, subscribe them now. Returns those refused."""
        new = [c for c in dict.fromkeys(channels)]
        for ch in new:
            self.wanted[ch] = None
        conn = self._conn
        if conn is None or not new:
            return []
        todo = [c for c in new if c not in self.subscribed]
        return await self._subscribe(conn, todo) if todo else []

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Stop wanting these channels and unsubscribe them on the current connection."""
        gone = [c for c in dict.fromkeys(channels) if c in self.wanted or c in self.subscribed]
        for ch in gone:
            self.wanted.pop(ch, None)
        conn = self._conn
        if conn is None or not gone:
            return
        async with self._sub_lock:
            for req in protocol.unsubscribe_batches(gone, conn.ids):
                try:
                    await self._request(conn, req)
                except (RpcFailed, ConnectionLost, asyncio.TimeoutError) as err:
                    log.warning("unsubscribe_failed", extra={"error": str(err), "channels": len(req.channels)})
                self.subscribed.difference_update(req.channels)

    async def resubscribe(self, channel: str) -> None:
        """Unsubscribe and subscribe one channel (a fresh book snapshot), leaving the rest alone."""
        conn = self._conn
        if conn is None:
            return
        async with self._sub_lock:
            for req in protocol.unsubscribe_batches([channel], conn.ids):
                await self._request(conn, req)
            self.subscribed.discard(channel)
        await self._subscribe(conn, [channel])

    def stop(self) -> None:
        self._stop.set()

    # -- the loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and stay connected until :meth:`stop`."""
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            reason = await self._one_connection()
            if self._stop.is_set():
                break
            if time.monotonic() - started > 60:
                attempt = 0   # the last connection was healthy: start the backoff again
            delay = full_jitter(attempt, self.backoff_initial_s, self.backoff_max_s, floor=self.backoff_initial_s / 2)
            attempt += 1
            log.warning("ws_reconnecting", extra={"reason": reason, "in_s": round(delay, 2), "attempt": attempt})
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def _one_connection(self) -> str:
        """One connection's life; returns why it ended."""
        try:
            ws = await wsconn.connect(self.url, open_timeout=self.open_timeout_s, max_size=64 * 1024 * 1024,
                                      max_queue=self.max_queue)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException,
                wsconn.ConnectionClosed) as err:
            return f"connect failed: {type(err).__name__}: {err}"
        self._numbers += 1
        conn = _Conn(ws, self._numbers)
        connected_at = time.time()
        self.connects += 1
        reader = asyncio.create_task(self._read(conn), name=f"ws-read-{conn.number}")
        silence = asyncio.create_task(self._silence_watch(conn), name=f"ws-silence-{conn.number}")
        reason = "closed"
        setup = stop = None
        try:
            self._conn = conn
            self.subscribed = set()
            setup = asyncio.create_task(self._setup(conn, connected_at))
            stop = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait({setup, reader, stop}, return_when=asyncio.FIRST_COMPLETED)
            if setup in done and setup.exception() is None and not self._stop.is_set():
                done, _ = await asyncio.wait({reader, silence, stop}, return_when=asyncio.FIRST_COMPLETED)
            for t in (setup, stop):
                if not t.done():
                    t.cancel()
            if self._stop.is_set():
                reason = "stopped"
            elif setup.done() and not setup.cancelled() and setup.exception() is not None:
                reason = f"set-up failed: {setup.exception()}"
            elif silence.done() and not silence.cancelled():
                reason = silence.result()
            elif reader.done() and not reader.cancelled():
                reason = reader.result()
        finally:
            self._conn = None
            self.subscribed = set()
            for task in (reader, silence):
                task.cancel()
            for _method, fut in conn.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionLost(reason))
                    fut.exception()  # mark retrieved
            conn.pending.clear()
            try:
                await ws.close()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                pass
            # every task of this connection is awaited, so none ends with an unretrieved exception
            await asyncio.gather(reader, silence, *(t for t in (setup, stop) if t is not None),
                                 return_exceptions=True)
        self.disconnects += 1
        if self.on_disconnected is not None:
            self.on_disconnected(DisconnectInfo(conn.number, reason, conn.last_frame_at, time.time()))
        return reason

    async def _setup(self, conn: _Conn, connected_at: float) -> None:
        try:
            await self._request(conn, protocol.hello(conn.ids(), self.client_name, self.client_version))
        except RpcFailed as err:  # not essential
            log.warning("ws_hello_failed", extra={"error": str(err)})
        await self._request(conn, protocol.set_heartbeat(conn.ids(), self.heartbeat_s,
                                                         minimum=min(self.heartbeat_s, protocol.MIN_HEARTBEAT_S)))
        refused = await self._subscribe(conn, list(self.wanted))
        info = ConnectInfo(conn.number, connected_at, time.time(), len(self.subscribed), tuple(refused))
        log.info("ws_connected", extra={"connection": conn.number, "channels": info.channels,
                                        "refused": len(refused)})
        if self.on_connected is not None:
            res = self.on_connected(info)
            if asyncio.iscoroutine(res):
                await res

    async def _subscribe(self, conn: _Conn, channels: list[str]) -> list[str]:
        refused: list[str] = []
        async with self._sub_lock:
            for n, req in enumerate(protocol.subscribe_batches(channels, conn.ids)):
                if n:
                    await asyncio.sleep(self.subscribe_interval_s)
                try:
                    result = await self._request(conn, req)
                except RpcFailed as err:
                    log.error("subscribe_refused", extra={"code": err.code, "error": err.message,
                                                          "channels": len(req.channels), "first": req.channels[0]})
                    if is_rate_limited(err.code):  # the server closes the session: reconnect later
                        raise
                    refused.extend(req.channels)
                    continue
                check = protocol.check_subscribed(req.channels, result)
                self.subscribed.update(check.accepted)
                refused.extend(check.missing)
        if refused:
            log.warning("channels_refused", extra={"count": len(refused), "first": refused[0]})
        return refused

    async def _request(self, conn: _Conn, req: protocol.Request) -> Any:
        fut = asyncio.get_running_loop().create_future()
        conn.pending[req.id] = (req.method, fut)
        try:
            await conn.ws.send(req.frame)
        except wsconn.ConnectionClosed as err:
            conn.pending.pop(req.id, None)
            raise ConnectionLost(str(err)) from None
        try:
            return await asyncio.wait_for(fut, timeout=self.request_timeout_s)
        finally:
            conn.pending.pop(req.id, None)

    async def _read(self, conn: _Conn) -> str:
        on_note, on_raw = self.on_notification, self.on_raw
        split = split_notification if self.raw_data else None
        ws = conn.ws
        try:
            while True:
                batch = await ws.recv_batch()   # every message of one socket read
                now = time.time()
                conn.last_frame_at = self.last_frame_at = now
                self.last_progress = time.monotonic()
                self.frames += len(batch)
                for raw in batch:
                    if on_raw is not None:
                        on_raw(raw, now)
                    if split is not None:  # the hot path: only the envelope is decoded here
                        note = split(raw)
                        if note is not None:
                            on_note(note[0], note[1], now)
                            continue
                    try:
                        msg = decode(raw)
                    except DecodeError as err:
                        self._bad(str(err), raw)
                        continue
                    # the hot path: a well-formed notification goes straight to the owner
                    if type(msg) is dict and msg.get("method") == "subscription":
                        params = msg.get("params")
                        if type(params) is dict and type(params.get("channel")) is str and "data" in params:
                            on_note(params["channel"], params["data"], now)
                            continue
                    await self._control(conn, classify(msg), raw)
        except wsconn.ConnectionClosed as err:
            return f"connection closed: {err}"

    async def _control(self, conn: _Conn, frame: Any, raw: Any) -> None:
        if type(frame) is Heartbeat:
            if frame.type == "test_request":
                await conn.ws.send(protocol.test(conn.ids()).frame)
                self.heartbeats_answered += 1
                self.last_progress = time.monotonic()
        elif type(frame) is Response:
            self._resolve(conn, frame)
        elif type(frame) is Unknown:
            self._bad(frame.reason, raw)

    def _resolve(self, conn: _Conn, frame: Response) -> None:
        item = conn.pending.get(frame.id) if isinstance(frame.id, int) else None
        if item is None:
            return  # e.g. the answer to a public/test we do not wait for
        method, fut = item
        if fut.done():
            return
        if frame.error is not None:
            fut.set_exception(RpcFailed(method, frame.error.code, frame.error.message))
        else:
            fut.set_result(frame.result)

    def _bad(self, reason: str, raw: Any) -> None:
        if self.on_bad_frame is not None:
            self.on_bad_frame(reason, raw)

    async def _silence_watch(self, conn: _Conn) -> str:
        """Deribit sends a heartbeat every ``heartbeat_s``: a socket silent for 3 of them is dead."""
        limit = 3 * self.heartbeat_s + 5
        opened = time.monotonic()
        while True:
            await asyncio.sleep(min(5.0, limit / 3))
            last = self.last_progress if conn.last_frame_at is not None else opened
            if time.monotonic() - max(last, opened) > limit:
                return f"no frame for {limit} s"
