"""The stream's frame reader: any chunking of a server's byte stream gives the same messages."""

from __future__ import annotations

import random

import pytest
from websockets.frames import Frame, Opcode

from collector.deribit.wsframes import BINARY, CLOSE, PING, TEXT, FrameReader, ProtocolError, close_reason


def server(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin).serialize(mask=False, extensions=[])


def stream() -> tuple[bytes, list[tuple[int, bytes]]]:
    rng = random.Random(3)
    data, want = [], []
    for i in range(300):
        size = rng.choice((0, 5, 125, 126, 127, 700, 65535, 65536, 200_000))
        payload = bytes(rng.randrange(256) for _ in range(min(size, 50))) * (size // 50 + 1)
        payload = payload[:size]
        if i % 17 == 0:
            data.append(server(Opcode.PING, b"p%d" % i))
            want.append((PING, b"p%d" % i))
        if i % 11 == 0:  # a fragmented message with a ping in the middle
            data += [server(Opcode.TEXT, payload[:3], fin=False), server(Opcode.PING, b""),
                     server(Opcode.CONT, payload[3:10], fin=False), server(Opcode.CONT, payload[10:])]
            want += [(PING, b""), (TEXT, payload)]
        else:
            op = Opcode.BINARY if i % 5 == 0 else Opcode.TEXT
            data.append(server(op, payload))
            want.append((BINARY if op is Opcode.BINARY else TEXT, payload))
    data.append(server(Opcode.CLOSE, (1001).to_bytes(2, "big") + b"bye"))
    want.append((CLOSE, (1001).to_bytes(2, "big") + b"bye"))
    return b"".join(data), want


@pytest.mark.parametrize("chunking", ["whole", "bytes", "random"])
def test_any_chunking_gives_the_same_messages(chunking):
    data, want = stream()
    r = FrameReader()
    got = []
    if chunking == "whole":
        got = r.feed(data)
    else:
        rng = random.Random(5)
        pos = 0
        while pos < len(data):
            step = 1 if chunking == "bytes" and pos < 3000 else rng.randrange(1, 100_000)
            got += r.feed(data[pos:pos + step])
            pos += step
    assert got == want
    assert close_reason(got[-1][1]) == (1001, "bye") and close_reason(b"") == (1005, "")


@pytest.mark.parametrize("raw", [
    Frame(Opcode.TEXT, b"x").serialize(mask=True, extensions=[]),          # servers never mask
    bytes([0x81 | 0x40, 1]) + b"x",                                         # RSV1 without an extension
    bytes([0x83, 1]) + b"x",                                                # reserved opcode
    bytes([0x80, 1]) + b"x",                                                # continuation without a start
    bytes([0x09, 1]) + b"x",                                                # fragmented ping
    bytes([0x01, 1]) + b"x" + bytes([0x81, 1]) + b"y",                      # new message inside a fragmented one
    bytes([0x81, 127]) + (1 << 40).to_bytes(8, "big"),                     # over max_size
])
def test_protocol_errors(raw):
    with pytest.raises(ProtocolError):
        FrameReader(max_size=1 << 20).feed(raw)
