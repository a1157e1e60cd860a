"""A WebSocket client connection for the stream: websockets' handshake, then a batched receive path.

The opening handshake is websockets' own sans-I/O :class:`~websockets.client.ClientProtocol` (request,
response checks, ``Sec-WebSocket-Accept``); outgoing frames are websockets' :class:`~websockets.frames.Frame`
(masked). Incoming frames go through :class:`~collector.deribit.wsframes.FrameReader`: one call per
socket read, and the reader gets *every* message of that read at once from :meth:`WsConnection.recv_batch`
-- no future, no generator and no queue hop per message, which is most of what a message cost
(see bench/README.md). Pings are answered at once; a close is answered and ends the connection.

Flow control is explicit: past ``max_queue`` undelivered messages the socket is paused (TCP pushes back
on the server) until the reader catches up. ``wss://`` uses the system's default TLS context.
"""

from __future__ import annotations

import asyncio
import ssl

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import USER_AGENT, Response
from websockets.uri import parse_uri

from collector.deribit.wsframes import CLOSE, PING, FrameReader, ProtocolError, close_reason

__all__ = ["ConnectionClosed", "WsConnection", "connect"]


class ConnectionClosed(Exception):
    """The connection is gone (closed by either side, or lost); ``str()`` says how."""


def _frame(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=True, extensions=[])


class WsConnection(asyncio.Protocol):
    def __init__(self, handshake: ClientProtocol, max_size: int, max_queue: int) -> None:
        self._hs = handshake
        self._reader: FrameReader | None = None
        self._max_size = max_size
        self._max_queue = max_queue
        self._opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self._msgs: list[bytes] = []
        self._waiter: asyncio.Future | None = None
        self._paused = False
        self._closed: str | None = None
        self._lost = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    # -- asyncio callbacks -----------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(b"".join(self._hs.data_to_send()))

    def data_received(self, data: bytes) -> None:
        if self._reader is None:
            self._handshake(data)
            return
        try:
            items = self._reader.feed(data)
        except ProtocolError as err:
            self._fail(1002, str(err))
            return
        msgs = self._msgs
        for opcode, payload in items:
            if opcode <= 2:
                msgs.append(payload)
            elif opcode == PING:
                self.transport.write(_frame(Opcode.PONG, payload))
            elif opcode == CLOSE:
                code, reason = close_reason(payload)
                self._fail(code if code not in (1005, 1006) else 1000, "", f"received close {code} {reason}".strip())
                break
        if msgs:
            self._wake()
            if len(msgs) > self._max_queue and not self._paused and self._closed is None:
                self._paused = True
                self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed is None:
            self._closed = f"connection lost: {exc}" if exc else "connection lost"
        if not self._opened.done():
            self._opened.set_exception(ConnectionClosed(self._closed))
        self._lost.set()
        self._wake()

    def _handshake(self, data: bytes) -> None:
        hs = self._hs
        hs.receive_data(data)
        events = hs.events_received()
        if not events or self._opened.done():
            return
        if hs.handshake_exc is not None or not isinstance(events[0], Response):
            self._opened.set_exception(hs.handshake_exc or ConnectionClosed("no handshake response"))
            self.transport.abort()
            return
        self._reader = FrameReader(self._max_size)
        for ev in events[1:]:  # frames that came with the response (Deribit sends none)
            if isinstance(ev, Frame) and ev.opcode in (Opcode.TEXT, Opcode.BINARY) and ev.fin:
                self._msgs.append(bytes(ev.data))
        self._opened.set_result(None)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, code: int, reason: str, why: str | None = None) -> None:
        if self._closed is None:
            self._closed = why or f"failed: {reason} (code {code})"
            try:
                self.transport.write(_frame(Opcode.CLOSE, code.to_bytes(2, "big") + reason.encode()[:120]))
            except Exception:  # noqa: BLE001 - the transport may already be gone
                pass
            self.transport.close()
        self._wake()

    # -- the owner's API -------------------------------------------------------------------------

    async def recv_batch(self) -> list[bytes]:
        """Every message received and not yet taken (at least one); raises ConnectionClosed at the end."""
        while not self._msgs:
            if self._closed is not None:
                raise ConnectionClosed(self._closed)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        out, self._msgs = self._msgs, []
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        return out

    async def send(self, message: str | bytes) -> None:
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        data = message.encode() if isinstance(message, str) else message
        self.transport.write(_frame(Opcode.TEXT, data))

    async def close(self, timeout_s: float = 2.0) -> None:
        """Send a normal close and wait (at most ``timeout_s``) for the server to end the connection."""
        if self.transport is None:
            return
        if self._closed is None:
            self._closed = "closed by us"
            try:
                self.transport.write(_frame(Opcode.CLOSE, (1000).to_bytes(2, "big")))
            except Exception:  # noqa: BLE001
                pass
        self._wake()
        try:
            await asyncio.wait_for(self._lost.wait(), timeout_s)
        except asyncio.TimeoutError:
            self.transport.abort()


async def connect(url: str, *, open_timeout: float = 15.0, max_size: int = 64 * 1024 * 1024,
                  max_queue: int = 10_000) -> WsConnection:
    """Open a connection and complete the handshake within ``open_timeout``.

    Raises OSError / asyncio.TimeoutError / a websockets handshake error (InvalidStatus, ...) /
    ConnectionClosed: all mean "not connected, try again later".
    """
    uri = parse_uri(url)
    hs = ClientProtocol(uri, max_size=max_size)
    request = hs.connect()
    request.headers["User-Agent"] = USER_AGENT
    hs.send_request(request)
    loop = asyncio.get_running_loop()
    ctx = ssl.create_default_context() if uri.secure else None
    conn: WsConnection | None = None

    def factory() -> WsConnection:
        nonlocal conn
        conn = WsConnection(hs, max_size, max_queue)
        return conn

    async def open_() -> WsConnection:
        transport, proto = await loop.create_connection(factory, uri.host, uri.port, ssl=ctx,
                                                        server_hostname=uri.host if ctx else None)
        try:
            await proto._opened
        except BaseException:
            transport.abort()
            raise
        return proto

    return await asyncio.wait_for(open_(), open_timeout)
