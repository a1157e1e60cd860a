"""Server-to-client WebSocket frames (RFC 6455 §5): bytes in, complete messages out. Pure: no I/O.

The stream's receive path: one :meth:`FrameReader.feed` per socket read turns every frame in the chunk
into ``(opcode, payload)`` items -- data messages reassembled from fragments, control frames (ping,
pong, close) as they come -- in one pass, without a generator or a future per frame. Deribit negotiates
no extension (the session asks for none), so a frame with a reserved bit set, a masked frame (servers
never mask) or a message over ``max_size`` is a :class:`ProtocolError`. Text payloads stay bytes:
the JSON decoders validate UTF-8 themselves.
"""

from __future__ import annotations

__all__ = ["ProtocolError", "FrameReader", "CONT", "TEXT", "BINARY", "CLOSE", "PING", "PONG", "close_reason"]

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ProtocolError(Exception):
    """The peer broke the WebSocket framing rules; the connection must be failed (close code 1002)."""


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
                raise ProtocolError(f"frame of {length} bytes over the limit of {self.max_size}")
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
                    out.append((opcode, payload))
                else:
                    self._frag_op, self._frag, self._frag_size = opcode, [payload], length
            elif opcode == CONT:
                if not self._frag_op:
                    raise ProtocolError("a continuation frame without a message")
                self._frag.append(payload)
                self._frag_size += length
                if self._frag_size > self.max_size:
                    raise ProtocolError(f"message over the limit of {self.max_size} bytes")
                if fin:
                    out.append((self._frag_op, b"".join(self._frag)))
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
    """A close frame's (code, reason); 1005 when it carries no code."""
    if len(payload) < 2:
        return 1005, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8", "replace")
