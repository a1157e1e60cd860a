"""A WebSocket client connection for the stream: websockets' handshake, then a batched receive path.

The opening handshake is websockets' own sans-I/O :class:`~websockets.client.ClientProtocol` (request,
response checks, ``Sec-WebSocket-Accept``). Incoming frames are parsed by one of two readers, chosen by
``frames=`` (default: the module constant :data:`FRAMES`; ``bench/ws_max.py --frames`` runs both):

* ``"ours"``: :class:`~collector.deribit.wsframes.FrameReader`, a pure one-pass reader;
* ``"websockets"``: the same ``ClientProtocol`` carries on after the handshake (``receive_data()``,
  ``events_received()``, ``data_to_send()``: it answers pings, echoes a close and fails on a framing
  error); fragments are reassembled and text messages' UTF-8 checked here, as websockets' own
  ``Assembler`` does (the sans-I/O layer checks neither).

Either way one call per socket read, and the owner gets *every* message of that read at once from
:meth:`WsConnection.recv_batch` -- no future, no generator and no queue hop per message, which is most
of what a message cost (see bench/README.md). Both follow RFC 6455 alike: pings answered, text checked
for UTF-8 (1007), framing errors failed with 1002 (1009: too big), and closing is a handshake: the
side that closes sends a close frame, the other echoes it, and the server ends the TCP connection; we
wait for that at most ``close_timeout`` seconds, then drop the socket.

Flow control is explicit: past ``max_queue`` undelivered messages the socket is paused (TCP pushes back
on the server) until the reader catches up. ``wss://`` uses the system's default TLS context. A proxy
is used as websockets' ``connect()`` uses one: from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
``ALL_PROXY``/``SOCKS_PROXY``, ``NO_PROXY``; ``urllib.request.getproxies()``) unless ``proxy=None``;
http:// and https:// proxies (CONNECT) work as they are, socks5://... needs ``python-socks`` installed.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Literal

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import USER_AGENT, Response
from websockets.protocol import OPEN, SEND_EOF
from websockets.proxy import get_proxy, parse_proxy
from websockets.typing import BytesLike
from websockets.uri import parse_uri

from collector.deribit.wsframes import CLOSE, PING, FrameReader, ProtocolError, check_utf8, close_reason
from collector.errors import CollectorError

__all__ = ["ConnectionClosed", "WsConnection", "connect", "FRAMES", "FRAME_READERS"]

FRAME_READERS = ("ours", "websockets")
FRAMES = "ours"
"""Which reader parses incoming frames when ``connect()`` is not told. Ours: websockets' protocol costs
3-4 us more per frame and lowered the stream's ceiling by ~21 % (bench/README.md, "Frame reader")."""

_TEXT, _BINARY, _CONT, _CLOSE = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.CLOSE


class ConnectionClosed(CollectorError):
    """The connection is gone (closed by either side, or lost); ``str()`` says how."""


def _frame(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=True, extensions=[])


class WsConnection(asyncio.Protocol):
    def __init__(self, handshake: ClientProtocol, max_size: int, max_queue: int, frames: str | None = None,
                 close_timeout: float = 2.0) -> None:
        frames = frames or FRAMES
        if frames not in FRAME_READERS:
            raise ValueError(f"frames={frames!r}: one of {', '.join(FRAME_READERS)}")
        self.frames = frames
        self._hs = handshake
        self._head: bytes | None = b""      # the response's head until it is complete (then None)
        self._open = False
        self._reader = FrameReader(max_size) if frames == "ours" else None
        self._frag: list[BytesLike] | None = None  # websockets reader: a fragmented message in progress
        self._frag_text = False
        self._max_queue = max_queue
        self._close_timeout = close_timeout
        self._opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self._msgs: list[bytes] = []
        self._waiter: asyncio.Future | None = None
        self._paused = False
        self._closed: str | None = None     # why the connection ends (set when closing starts)
        self._close_sent = False            # our reader: a close frame went out
        self._failed = False                # our reader: the connection was failed, input is discarded
        self._drop: asyncio.TimerHandle | None = None
        self._lost = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    # -- asyncio callbacks -----------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(b"".join(self._hs.data_to_send()))

    def data_received(self, data: bytes) -> None:
        if not self._open:
            data = self._handshake(data)
            if not data:
                return
        if self._reader is not None:
            self._feed_ours(data)
        else:
            self._feed_websockets(data)
        msgs = self._msgs
        if msgs:
            self._wake()
            if len(msgs) > self._max_queue and not self._paused and self._closed is None:
                self._paused = True
                assert self.transport is not None
                self.transport.pause_reading()

    def eof_received(self) -> None:
        if self._reader is None and self._open:
            self._hs.receive_eof()
            self._write(self._hs.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        if self._drop is not None:
            self._drop.cancel()
        if self._closed is None:
            self._closed = f"connection lost: {exc}" if exc else "connection lost"
        if not self._opened.done():
            self._opened.set_exception(ConnectionClosed(self._closed))
        self._lost.set()
        self._wake()

    def _handshake(self, data: bytes) -> bytes:
        """Feed the handshake; returns the bytes after a successful response (frames), else b""."""
        hs, rest = self._hs, b""
        if self._head is not None:  # give websockets the head alone, so that no frame byte stays in it
            buf = self._head + data
            end = buf.find(b"\r\n\r\n")
            if end < 0 and len(buf) < 65536:
                self._head = buf
                return b""
            self._head = None
            data, rest = (buf[:end + 4], buf[end + 4:]) if end >= 0 else (buf, b"")
        hs.receive_data(data)
        events = hs.events_received()
        if not events and rest:  # not a 101: a body follows
            hs.receive_data(rest)
            events, rest = hs.events_received(), b""
        if not events or self._opened.done():
            return b""
        if hs.handshake_exc is not None or not isinstance(events[0], Response):
            self._opened.set_exception(hs.handshake_exc or ConnectionClosed("no handshake response"))
            assert self.transport is not None
            self.transport.abort()
            return b""
        self._open = True
        self._opened.set_result(None)
        return rest

    def _feed_ours(self, data: bytes) -> None:
        if self._failed:
            return  # RFC 6455 §7.1.7: no more processing of a failed connection's data
        assert self._reader is not None
        try:
            items = self._reader.feed(data)
        except ProtocolError as err:
            items = err.before
            self._deliver_ours(items)
            self._fail(err.code, str(err))
            return
        self._deliver_ours(items)

    def _deliver_ours(self, items: list[tuple[int, bytes]]) -> None:
        msgs, transport = self._msgs, self.transport
        assert transport is not None
        for opcode, payload in items:
            if opcode <= 2:
                if not self._close_sent:
                    msgs.append(payload)
            elif opcode == PING:
                if not self._close_sent:
                    transport.write(_frame(Opcode.PONG, payload))
            elif opcode == CLOSE:
                try:
                    code, reason = close_reason(payload)
                except ProtocolError as err:
                    self._fail(err.code, str(err))
                    return
                if not self._close_sent:  # echo it (§5.5.1); the server then ends the TCP connection
                    self._close_sent = True
                    transport.write(_frame(Opcode.CLOSE, payload[:2]))
                self._failed = True       # nothing after a close is processed (§1.4)
                self._closing(f"received close {code} {reason}".strip())
                return

    def _feed_websockets(self, data: bytes) -> None:
        p = self._hs
        p.receive_data(data)
        msgs = self._msgs
        for ev in p.events_received():
            assert isinstance(ev, Frame)  # after the handshake, events are frames
            op = ev.opcode
            if op is _TEXT or op is _BINARY:
                if ev.fin:
                    payload = bytes(ev.data)
                    if op is _TEXT and not payload.isascii() and not self._utf8(payload):
                        break
                    msgs.append(payload)
                else:
                    self._frag, self._frag_text = [ev.data], op is _TEXT
            elif op is _CONT:
                assert self._frag is not None  # websockets rejects a continuation with no message started
                self._frag.append(ev.data)
                if ev.fin:
                    payload, self._frag = b"".join(self._frag), None
                    if self._frag_text and not payload.isascii() and not self._utf8(payload):
                        break
                    msgs.append(payload)
            elif op is _CLOSE:
                rcvd = p.close_rcvd
                self._closing(f"received close {rcvd.code} {rcvd.reason}".strip() if rcvd else "received close")
        out = p.data_to_send()
        if out:
            self._write(out)
        if p.parser_exc is not None and self._closed is None:
            sent = p.close_sent
            self._closing(f"failed: {p.parser_exc} (code {sent.code if sent else 1006})")

    def _utf8(self, payload: bytes) -> bool:
        try:
            check_utf8(payload)
        except ProtocolError as err:
            self._hs.fail(err.code, str(err))
            self._closing(f"failed: {err} (code {err.code})")
            return False
        return True

    def _write(self, chunks: list[bytes]) -> None:
        t = self.transport
        assert t is not None
        for chunk in chunks:
            if chunk == SEND_EOF:
                if t.can_write_eof():
                    t.write_eof()
            else:
                t.write(chunk)

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _closing(self, why: str) -> None:
        """The closing handshake started: the reader ends; the server has ``close_timeout`` to end TCP."""
        if self._closed is None:
            self._closed = why
        if self._drop is None and not self._lost.is_set():
            self._drop = asyncio.get_running_loop().call_later(self._close_timeout, self._abort)
        self._wake()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, code: int, reason: str) -> None:
        """Fail the connection (§7.1.7, our reader): send a close with ``code``, discard what comes."""
        self._failed = True
        if not self._close_sent:
            self._close_sent = True
            try:
                assert self.transport is not None
                self.transport.write(_frame(Opcode.CLOSE, code.to_bytes(2, "big") + reason.encode()[:120]))
            except Exception:  # noqa: BLE001 - the transport may already be gone
                pass
        self._closing(f"failed: {reason} (code {code})")

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
            assert self.transport is not None
            self.transport.resume_reading()
        return out

    async def send(self, message: str | bytes) -> None:
        if self._closed is not None:
            raise ConnectionClosed(self._closed)
        data = message.encode() if isinstance(message, str) else message
        if self._reader is not None:
            assert self.transport is not None
            self.transport.write(_frame(Opcode.TEXT, data))
        else:
            self._hs.send_text(data)
            self._write(self._hs.data_to_send())

    async def close(self, timeout_s: float = 2.0) -> None:
        """Start (or finish) the closing handshake with 1000 and wait at most ``timeout_s`` for the server
        to end the connection; then drop it."""
        if self.transport is None:
            return
        if not self._lost.is_set():
            if self._reader is not None:
                if not self._close_sent:
                    self._close_sent = True
                    self.transport.write(_frame(Opcode.CLOSE, (1000).to_bytes(2, "big")))
            elif self._open and self._hs.state is OPEN:
                self._hs.send_close(1000)
                self._write(self._hs.data_to_send())
            self._closing("closed by us")
        self._wake()
        try:
            await asyncio.wait_for(self._lost.wait(), timeout_s)
        except asyncio.TimeoutError:
            self.transport.abort()


async def connect(url: str, *, open_timeout: float = 15.0, max_size: int = 64 * 1024 * 1024,
                  max_queue: int = 10_000, frames: str | None = None, close_timeout: float = 2.0,
                  proxy: str | Literal[True] | None = True) -> WsConnection:
    """Open a connection and complete the handshake within ``open_timeout``. ``proxy``: True = from the
    environment (as websockets' ``connect()``), None = never, or a proxy URL.

    Raises OSError / asyncio.TimeoutError / a websockets handshake or proxy error (InvalidStatus,
    InvalidProxy, ...) / ConnectionClosed: all mean "not connected, try again later".
    """
    uri = parse_uri(url)
    hs = ClientProtocol(uri, max_size=max_size)
    request = hs.connect()
    request.headers["User-Agent"] = USER_AGENT
    hs.send_request(request)
    loop = asyncio.get_running_loop()
    ctx = ssl.create_default_context() if uri.secure else None
    tls: dict[str, Any] = {"ssl": ctx, "server_hostname": uri.host} if ctx else {}
    conn = WsConnection(hs, max_size, max_queue, frames, close_timeout)
    if proxy is True:
        proxy = get_proxy(uri)

    async def transport_() -> asyncio.Transport:
        if proxy is None:
            return (await loop.create_connection(lambda: conn, uri.host, uri.port, **tls))[0]
        from websockets.asyncio.client import connect_http_proxy, connect_socks_proxy
        parsed = parse_proxy(proxy)
        if parsed.scheme.startswith("socks"):
            sock = await connect_socks_proxy(parsed, uri)
            return (await loop.create_connection(lambda: conn, sock=sock, **tls))[0]
        to_proxy = {"ssl": ssl.create_default_context()} if parsed.scheme == "https" else {}
        transport = await connect_http_proxy(parsed, uri, user_agent_header=USER_AGENT, **to_proxy)
        transport.set_protocol(conn)
        if ctx is not None:
            tls_transport = await loop.start_tls(transport, conn, ctx, server_hostname=uri.host)
            assert tls_transport is not None  # typeshed says "| None"; asyncio returns the new transport
            transport = tls_transport
        conn.connection_made(transport)
        return transport

    async def open_() -> WsConnection:
        transport = await transport_()
        try:
            await conn._opened
        except BaseException:
            transport.abort()
            raise
        return conn

    return await asyncio.wait_for(open_(), open_timeout)
