"""Server-to-client WebSocket frames (RFC 6455 §5): bytes in, complete messages out. Pure: no I/O.

The stream's receive path: one :meth:`FrameReader.feed` per socket read turns every frame in the chunk
into ``(opcode, payload)`` items -- data messages reassembled from fragments, control frames (ping,
pong, close) as they come -- in one pass, without a generator or a future per frame. Deribit negotiates
no extension (the session asks for none), so a frame with a reserved bit set, a masked frame (servers
never mask) or a message over ``max_size`` is a :class:`ProtocolError`, and so is every other RFC 6455
rule a server's frames can break: a fragmented or > 125-byte control frame, a continuation without a
message, a reserved opcode (1002), a text message that is not UTF-8 (1007: checked once per whole
message, ``bytes.isascii()`` first, so the usual ASCII JSON costs ~nothing), a message over the limit
(1009), a malformed close payload (1002/1007). The error carries the close code to send and the
messages of the same chunk that came before it (valid, so they are delivered). Text payloads stay bytes.
"""

from __future__ import annotations

from collector.errors import CollectorError

__all__ = ["ProtocolError", "FrameReader", "CONT", "TEXT", "BINARY", "CLOSE", "PING", "PONG", "close_reason",
           "check_utf8"]

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ProtocolError(CollectorError):
    """The peer broke the WebSocket framing rules; the connection must be failed with close ``code``
    (1002 protocol error, 1007 invalid UTF-8, 1009 too big). ``before``: the messages of the same chunk
    that preceded the bad frame."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code
        self.before: list[tuple[int, bytes]] = []


def check_utf8(payload: bytes) -> None:
    """Raise ProtocolError 1007 unless ``payload`` is UTF-8 (callers test ``isascii()`` first: cheaper)."""
    try:
        payload.decode()
    except UnicodeDecodeError as err:
        raise ProtocolError(f"invalid UTF-8 in a text message: {err.reason} at {err.start}", 1007) from None


class FrameReader:
    def __init__(self, max_size: int = 64 * 1024 * 1024) -> None:
        self.max_size = max_size
        self._parts: list[bytes] = []   # an incomplete frame's bytes, waiting for ``_need`` bytes in all
        self._have = 0
        self._need = 0
        self._frag_op = 0               # opcode of a fragmented message in progress (0: none)
        self._frag: list[bytes] = []
        self._frag_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Every complete message/control frame in ``data`` (plus what was buffered before)."""
        if self._parts:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            data = b"".join(self._parts)
            self._parts, self._have, self._need = [], 0, 0
        out: list[tuple[int, bytes]] = []
        try:
            return self._frames(data, out)
        except ProtocolError as err:
            err.before = out
            raise

    def _frames(self, data: bytes, out: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        pos, n = 0, len(data)
        while n - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            if b1 & 0x80:
                raise ProtocolError("masked frame from the server")
            if b0 & 0x70:
                raise ProtocolError("reserved bits set without an extension")
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(data[pos + 2:pos + 4], "big")
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2:pos + 10], "big")
                head = 10
            if length > self.max_size:
                raise ProtocolError(f"frame of {length} bytes over the limit of {self.max_size}", 1009)
            end = pos + head + length
            if end > n:
                self._need = end - pos
                break
            payload = data[pos + head:end]
            pos = end
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == TEXT or opcode == BINARY:
                if self._frag_op:
                    raise ProtocolError("a new message inside a fragmented one")
                if fin:
                    if opcode == TEXT and not payload.isascii():
                        check_utf8(payload)
                    out.append((opcode, payload))
                else:
                    self._frag_op, self._frag, self._frag_size = opcode, [payload], length
            elif opcode == CONT:
                if not self._frag_op:
                    raise ProtocolError("a continuation frame without a message")
                self._frag.append(payload)
                self._frag_size += length
                if self._frag_size > self.max_size:
                    raise ProtocolError(f"message over the limit of {self.max_size} bytes", 1009)
                if fin:
                    whole = b"".join(self._frag)
                    if self._frag_op == TEXT and not whole.isascii():
                        check_utf8(whole)
                    out.append((self._frag_op, whole))
                    self._frag_op, self._frag, self._frag_size = 0, [], 0
            elif opcode in (CLOSE, PING, PONG):
                if not fin or length > 125:
                    raise ProtocolError("fragmented or oversized control frame")
                out.append((opcode, payload))
            else:
                raise ProtocolError(f"reserved opcode {opcode:#x}")
        if pos < n:
            rest = data[pos:]
            self._parts, self._have = [rest], len(rest)
            self._need = max(self._need, 2)
        else:
            self._need = 0
        return out


def close_reason(payload: bytes) -> tuple[int, str]:
    """A close frame's (code, reason); 1005 when it carries no code (RFC 6455 §5.5.1, §7.4).

    Raises ProtocolError for a 1-byte payload or a code no endpoint may send (1002), a reason that is
    not UTF-8 (1007)."""
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise ProtocolError("a close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not (code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014)
            or 3000 <= code < 5000):
        raise ProtocolError(f"a close frame with the invalid code {code}")
    try:
        return code, payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolError("a close reason that is not UTF-8", 1007) from None
