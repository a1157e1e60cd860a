"""The stream's frame reader: any chunking of a server's byte stream gives the same messages; every RFC 6455
rule a server can break is an error with its close code (the connection-level behaviour, for both
readers: test_session_wsconn.py)."""

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
        op = Opcode.BINARY if i % 5 == 0 else Opcode.TEXT
        if op is Opcode.BINARY:
            payload = bytes(rng.randrange(256) for _ in range(min(size, 50))) * (size // 50 + 1)
        else:  # text must be UTF-8: multi-byte characters, cut anywhere by the fragments below
            payload = "".join(rng.choice("ab{}\"é€😀") for _ in range(min(size, 50))).encode() * (size // 50 + 1)
        payload = payload[:size]
        if op is Opcode.TEXT:
            payload = payload.decode(errors="ignore").encode()  # whole characters (the fragments are not)
        if i % 17 == 0:
            data.append(server(Opcode.PING, b"p%d" % i))
            want.append((PING, b"p%d" % i))
        if i % 11 == 0:  # a fragmented message with a ping in the middle
            data += [server(op, payload[:3], fin=False), server(Opcode.PING, b""),
                     server(Opcode.CONT, payload[3:10], fin=False), server(Opcode.CONT, payload[10:])]
            want += [(PING, b""), (BINARY if op is Opcode.BINARY else TEXT, payload)]
        else:
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


@pytest.mark.parametrize("raw, code", [
    (bytes([0x81, 3]) + b'"\xff"', 1007),                                          # text, not UTF-8
    (bytes([0x01, 2]) + "€".encode()[:2] + bytes([0x80, 1]) + b"x", 1007),        # a character cut off for good
    (bytes([0x81, 126]) + (2000).to_bytes(2, "big") + b"x" * 2000, 1009),         # over max_size
    (bytes([0x01, 1]) + b"x" + bytes([0x80, 126]) + (2000).to_bytes(2, "big") + b"x" * 2000, 1009),
    (bytes([0x89, 126]) + (126).to_bytes(2, "big") + b"p" * 126, 1002),           # control frame > 125 bytes
])
def test_close_codes_of_the_errors(raw, code):
    with pytest.raises(ProtocolError) as err:
        FrameReader(max_size=1000).feed(raw)
    assert err.value.code == code


def test_text_is_checked_as_a_whole_message_and_binary_not_at_all():
    euro = "€".encode()
    r = FrameReader()
    assert r.feed(bytes([0x01, 1]) + euro[:1]) == []                              # cut inside a character: fine
    assert r.feed(bytes([0x80, 2]) + euro[1:]) == [(TEXT, euro)]
    assert r.feed(bytes([0x82, 2]) + b"\xff\xfe") == [(BINARY, b"\xff\xfe")]


def test_the_messages_before_a_bad_frame_come_with_the_error():
    good = server(Opcode.TEXT, b'{"a":1}') + server(Opcode.PING, b"x")
    with pytest.raises(ProtocolError) as err:
        FrameReader().feed(good + server(Opcode.TEXT, b"\xc3") + server(Opcode.TEXT, b"{}"))
    assert err.value.before == [(TEXT, b'{"a":1}'), (PING, b"x")] and err.value.code == 1007


@pytest.mark.parametrize("payload, code", [
    (b"\x03", 1002),                                    # a 1-byte payload
    ((999).to_bytes(2, "big"), 1002), ((1005).to_bytes(2, "big"), 1002), ((1006).to_bytes(2, "big"), 1002),
    ((2999).to_bytes(2, "big"), 1002), ((5000).to_bytes(2, "big"), 1002),
    ((1000).to_bytes(2, "big") + b"\xff", 1007),       # a reason that is not UTF-8
])
def test_malformed_close_payloads(payload, code):
    with pytest.raises(ProtocolError) as err:
        close_reason(payload)
    assert err.value.code == code


def test_valid_close_payloads():
    assert close_reason(b"") == (1005, "")
    assert close_reason((1000).to_bytes(2, "big")) == (1000, "")
    assert close_reason((4001).to_bytes(2, "big") + "süß".encode()) == (4001, "süß")
