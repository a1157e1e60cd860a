"""The stream's WebSocket connection against a scripted server on loopback, with each frame reader
(``wsconn.FRAME_READERS``): RFC 6455 as a server can test it -- batched reads, pings, fragments, UTF-8,
rule-breaking frames failed with the right close code, the closing handshake both ways (bounded), a
handshake response with frames behind it, and a CONNECT proxy from the environment."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.server import ServerProtocol

from collector.deribit import wsconn

pytestmark = pytest.mark.parametrize("reader", wsconn.FRAME_READERS)


def raw(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    """A server frame (unmasked) built byte by byte, so that tests can break the rules."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big") if n < 65536 else \
        bytes([127]) + n.to_bytes(8, "big")
    return head + payload


class Peer:
    """One accepted connection: websockets' ServerProtocol does the handshake and reads the client's
    frames; what the server sends is raw bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sp = ServerProtocol(max_size=None)
        self.frames: list[Frame] = []

    async def handshake(self, after: bytes = b"") -> None:
        while not (events := self.sp.events_received()):
            self.sp.receive_data(await self.reader.read(65536))
        self.sp.send_response(self.sp.accept(events[0]))
        self.writer.write(b"".join(self.sp.data_to_send()) + after)

    def send(self, *frames: bytes) -> None:
        self.writer.write(b"".join(frames))   # one write: usually one read on the client

    async def frame(self, timeout: float = 5) -> Frame | None:
        """The client's next frame; None at EOF."""
        end = time.monotonic() + timeout
        while not self.frames:
            data = await asyncio.wait_for(self.reader.read(65536), max(0.01, end - time.monotonic()))
            if not data:
                return None
            self.sp.receive_data(data)
            self.frames += [ev for ev in self.sp.events_received() if isinstance(ev, Frame)]
        return self.frames.pop(0)

    async def eof_within(self, seconds: float) -> bool:
        try:
            while await asyncio.wait_for(self.reader.read(65536), seconds):
                pass
        except asyncio.TimeoutError:
            return False
        except ConnectionError:
            pass
        return True


async def serve(script):
    """A server running ``script(peer)`` per connection; returns (url, server, done) -- ``done`` gets the
    script's exception, if any."""
    done: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        try:
            await script(Peer(reader, writer))
            if not done.done():
                done.set_result(None)
        except BaseException as err:  # noqa: BLE001 - handed to the test
            if not done.done():
                done.set_exception(err)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws/api/v2", server, done


def run(script, client, **kw):
    async def main():
        url, server, done = await serve(script)
        try:
            ws = await wsconn.connect(url, proxy=None, **kw)
            try:
                await client(ws)
            finally:
                await ws.close(timeout_s=3)
            await asyncio.wait_for(done, 10)
        finally:
            server.close()
    asyncio.run(main())


async def drain(ws) -> tuple[list[list[bytes]], str]:
    """Every batch until the end, and how it ended."""
    batches = []
    while True:
        try:
            batches.append(await ws.recv_batch())
        except wsconn.ConnectionClosed as err:
            return batches, str(err)


def test_every_message_of_a_read_at_once_pings_answered_fragments_joined(reader):
    text = "é€😀 {}".encode()

    async def script(peer):
        await peer.handshake()
        peer.send(raw(Opcode.TEXT, b'{"a":1}'), raw(Opcode.PING, b"x"),
                  raw(Opcode.TEXT, text[:1], fin=False), raw(Opcode.PING, b""),   # cut inside a character
                  raw(Opcode.CONT, text[1:5], fin=False), raw(Opcode.CONT, text[5:]),
                  raw(Opcode.BINARY, b"\xff\x00"))
        got = [await peer.frame(), await peer.frame()]
        assert [(f.opcode, f.data) for f in got] == [(Opcode.PONG, b"x"), (Opcode.PONG, b"")]
        close = await peer.frame()                       # the client closes: we answer, then end TCP
        assert close.opcode is Opcode.CLOSE and Close.parse(close.data).code == 1000
        peer.send(raw(Opcode.CLOSE, close.data[:2]))

    async def client(ws):
        assert await ws.recv_batch() == [b'{"a":1}', text, b"\xff\x00"]
        t0 = time.monotonic()
        await ws.close(timeout_s=5)
        assert time.monotonic() - t0 < 2                 # the server ended it: no waiting for the timeout
        with pytest.raises(wsconn.ConnectionClosed, match="closed by us"):
            await ws.send("late")

    run(script, client, frames=reader)


def test_frames_in_the_same_read_as_the_handshake_response(reader):
    second = raw(Opcode.TEXT, b'{"b":' + b"2" * 300 + b"}")

    async def script(peer):
        await peer.handshake(after=raw(Opcode.TEXT, b'{"a":1}') + second[:7])
        await asyncio.sleep(0.1)
        peer.send(second[7:], raw(Opcode.CLOSE, (1000).to_bytes(2, "big")))
        assert (await peer.frame()).opcode is Opcode.CLOSE

    async def client(ws):
        batches, why = await drain(ws)
        assert sum(batches, []) == [b'{"a":1}', second[4:]] and why == "received close 1000"

    run(script, client, frames=reader)


BAD = [
    (raw(Opcode.TEXT, b'{"a":"\xff"}'), 1007),                                  # not UTF-8
    (raw(Opcode.TEXT, b"\xe2\x82", fin=False) + raw(Opcode.CONT, b"x"), 1007),  # a character cut off
    (Frame(Opcode.TEXT, b"x").serialize(mask=True, extensions=[]), 1002),       # servers never mask
    (bytes([0x81 | 0x40, 1]) + b"x", 1002),                                     # RSV1 without an extension
    (bytes([0x83, 1]) + b"x", 1002),                                            # reserved opcode
    (raw(Opcode.CONT, b"x"), 1002),                                             # continuation without a start
    (raw(Opcode.PING, b"x", fin=False), 1002),                                  # fragmented control frame
    (raw(Opcode.PING, b"p" * 126), 1002),                                       # control frame > 125 bytes
    (raw(Opcode.TEXT, b"x", fin=False) + raw(Opcode.TEXT, b"y"), 1002),         # a message inside a message
    (raw(Opcode.TEXT, b"x" * 2000), 1009),                                      # over max_size
]


@pytest.mark.parametrize("bad,code", BAD)
def test_a_rule_breaking_frame_fails_the_connection_with_its_close_code(reader, bad, code):
    async def script(peer):
        await peer.handshake()
        peer.send(raw(Opcode.TEXT, b'{"ok":1}'), bad, raw(Opcode.TEXT, b'{"after":1}'))
        close = await peer.frame()
        assert close.opcode is Opcode.CLOSE and Close.parse(close.data).code == code
        assert not await peer.eof_within(0.2)            # the client waits for the server to end TCP ...
        assert await peer.eof_within(5)                  # ... for close_timeout at most

    async def client(ws):
        batches, why = await drain(ws)
        assert sum(batches, []) == [b'{"ok":1}']         # what came before is delivered, nothing after
        assert why.startswith("failed:") and f"(code {code})" in why
        await asyncio.sleep(0.9)                         # past close_timeout: the connection's own timer

    run(script, client, frames=reader, max_size=1000, close_timeout=0.6)


def test_a_server_close_is_echoed_and_the_server_ends_tcp(reader):
    async def script(peer):
        await peer.handshake()
        peer.send(raw(Opcode.TEXT, b"{}"), raw(Opcode.CLOSE, (1001).to_bytes(2, "big") + b"bye"),
                  raw(Opcode.TEXT, b'{"after":1}'))
        echo = await peer.frame()
        assert echo.opcode is Opcode.CLOSE and Close.parse(echo.data).code == 1001
        assert not await peer.eof_within(0.2)            # the server, not the client, ends TCP

    async def client(ws):
        batches, why = await drain(ws)
        assert sum(batches, []) == [b"{}"] and why == "received close 1001 bye"

    run(script, client, frames=reader)


def test_close_waits_for_a_silent_server_only_so_long(reader):
    async def script(peer):
        await peer.handshake()
        close = await peer.frame()
        assert close.opcode is Opcode.CLOSE and Close.parse(close.data).code == 1000
        assert await peer.eof_within(5)                  # never answered: the client drops the socket

    async def client(ws):
        t0 = time.monotonic()
        await ws.close(timeout_s=0.5)
        assert 0.4 < time.monotonic() - t0 < 2

    run(script, client, frames=reader)


def test_a_malformed_close_frame_is_a_protocol_error(reader):
    async def script(peer):
        await peer.handshake()
        peer.send(raw(Opcode.CLOSE, b"\x03"))            # a 1-byte close payload
        close = await peer.frame()
        assert Close.parse(close.data).code == 1002

    async def client(ws):
        _, why = await drain(ws)
        assert "(code 1002)" in why

    run(script, client, frames=reader)


def test_connects_through_an_http_proxy_from_the_environment(reader, monkeypatch):
    connects: list[bytes] = []

    async def proxy(reader_, writer):
        head = await reader_.readuntil(b"\r\n\r\n")
        connects.append(head.split(b"\r\n")[0])
        host, port = head.split()[1].decode().rsplit(":", 1)
        up_r, up_w = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
            except ConnectionError:
                pass
            finally:
                w.close()
        await asyncio.gather(pipe(reader_, up_w), pipe(up_r, writer))

    async def script(peer):
        await peer.handshake()
        peer.send(raw(Opcode.TEXT, b'{"via":"proxy"}'))
        close = await peer.frame()
        peer.send(raw(Opcode.CLOSE, close.data[:2]))

    async def main():
        url, server, done = await serve(script)
        front = await asyncio.start_server(proxy, "127.0.0.1", 0)
        for var in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{front.sockets[0].getsockname()[1]}")
        try:
            ws = await wsconn.connect(url, frames=reader)
            assert await ws.recv_batch() == [b'{"via":"proxy"}']
            await ws.close()
            await asyncio.wait_for(done, 10)
        finally:
            server.close()
            front.close()

    asyncio.run(main())
    assert len(connects) == 1 and connects[0].startswith(b"CONNECT 127.0.0.1:")
