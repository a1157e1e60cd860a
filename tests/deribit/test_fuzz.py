"""Hostile input, property-based (hypothesis, bounded: a fixed number of examples, no deadline, no example
database): the frame reader, the frame decoding and the parsers get arbitrary bytes, truncated and
oversized frames and JSON of the wrong types (a string where a number is expected, null, nested garbage,
huge numbers, NaN). Never a crash: every bad input is an error the caller handles -- a ProtocolError with
its close code (the connection is failed), a DecodeError/ParseError, ``Unknown`` -- and in the stream's
Pipeline each one is counted by reason."""

from __future__ import annotations

import asyncio
import json
import math
import os
from copy import deepcopy
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from collector.deribit import frames, parse, parse_rest
from collector.deribit.frames import DecodeError, ParseError, Unknown
from collector.deribit.pipeline import Pipeline
from collector.deribit.wsconn import FRAME_READERS, ConnectionClosed, WsConnection
from collector.deribit.wsframes import FrameReader, ProtocolError, close_reason
from collector.records import Record

# FUZZ_EXAMPLES=5000 for a longer hunt by hand; CI runs the bounded default
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FUZZ, max_examples=max(10, EXAMPLES // 4))

# -- strategies ----------------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(), st.integers(min_value=2**63 - 2, max_value=2**63 + 2), st.integers(min_value=10**30),
    st.integers(max_value=-10**30), st.floats(), st.sampled_from([0, 0.0, -0.0, 1e308, -1e308, 5e-324, 10**400, -10**400, 2**64]))
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12),
                   st.sampled_from(["", "expired", "NaN", "1e999", "BTC-27DEC26-100000-C", "BTC-PERPETUAL",
                                    "btc_usd", "snapshot", "change", "delete", "new", "buy", "-", "_"]))
garbage = st.recursive(leaves, lambda kids: st.lists(kids, max_size=4)
                       | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)

NOW_MS = 1_764_000_000_000
TICKER = {"timestamp": NOW_MS, "instrument_name": "BTC-27DEC26-100000-C", "best_bid_price": 0.05,
          "best_bid_amount": 10.0, "best_ask_price": 0.06, "best_ask_amount": 5.0, "mark_price": 0.055,
          "mark_iv": 60.0, "bid_iv": 58.0, "ask_iv": 62.0, "underlying_price": 90000.0,
          "underlying_index": "BTC-27DEC26", "index_price": 90000.0, "open_interest": 100.0,
          "last_price": 0.05, "estimated_delivery_price": 90000.0,
          "greeks": {"delta": 0.5, "gamma": 0.0001, "vega": 10.0, "theta": -5.0, "rho": 1.0},
          "stats": {"volume": 12.0, "high": 0.07, "low": 0.04}}
PERP = {"timestamp": NOW_MS, "instrument_name": "BTC-PERPETUAL", "best_bid_price": 90000.0,
        "best_bid_amount": 1000.0, "best_ask_price": 90000.5, "best_ask_amount": 2000.0, "mark_price": 90000.2,
        "index_price": 90001.0, "current_funding": 0.0001, "funding_8h": 0.0002, "open_interest": 1e9}
TRADE = {"timestamp": NOW_MS, "instrument_name": "BTC-27DEC26-100000-C", "trade_seq": 7, "trade_id": "123",
         "price": 0.05, "amount": 1.0, "direction": "buy", "tick_direction": 0, "index_price": 90000.0,
         "mark_price": 0.05, "iv": 60.0, "contracts": 1.0}
BOOK = {"type": "snapshot", "timestamp": NOW_MS, "instrument_name": "BTC-PERPETUAL", "change_id": 10,
        "bids": [["new", 90000.0, 10.0]], "asks": [["new", 90001.0, 5.0]]}
INDEX = {"timestamp": NOW_MS, "index_name": "btc_usd", "price": 90000.0, "estimated_delivery_price": 90000.0}
STATE = {"timestamp": NOW_MS, "instrument_name": "BTC-27DEC26-100000-C", "state": "started"}
CHANNELS: dict[str, Any] = {  # channel -> a well-formed data
    "ticker.BTC-27DEC26-100000-C.100ms": TICKER, "ticker.BTC-PERPETUAL.100ms": PERP,
    "trades.option.BTC.100ms": [TRADE], "trades.BTC-PERPETUAL.100ms": [dict(TRADE, instrument_name="BTC-PERPETUAL")],
    "quote.BTC-27DEC26-100000-C": TICKER, "deribit_price_index.btc_usd": INDEX,
    "book.BTC-PERPETUAL.100ms": BOOK, "instrument.state.option.BTC": STATE, "nonsense": {},
}


@st.composite
def mutated(draw, base: Any) -> Any:
    """``base`` with some fields replaced by garbage, removed or nested deeper (the message otherwise real)."""
    doc = deepcopy(base)

    def objects(node: Any, out: list) -> list:
        if isinstance(node, dict):
            out.append(node)
            for v in node.values():
                objects(v, out)
        elif isinstance(node, list):
            for v in node:
                objects(v, out)
        return out

    for _ in range(draw(st.integers(1, 4))):
        targets = objects(doc, [])
        if not targets:
            break
        obj = draw(st.sampled_from(targets))
        keys = sorted(obj) or ["timestamp"]
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["replace", "replace", "delete", "wrap"]))
        if action == "delete":
            obj.pop(key, None)
        elif action == "wrap":
            obj[key] = [obj.get(key)]
        else:
            obj[key] = draw(garbage)
    if draw(st.integers(0, 9)) == 0:  # sometimes the whole data is garbage
        return draw(garbage)
    return doc


def encode(doc: Any) -> bytes:
    """JSON text for any of our values: stdlib json (big integers as digits, NaN/Infinity as the invalid
    tokens a hostile peer might send)."""
    return json.dumps(doc).encode()


def server_frame(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin).serialize(mask=False, extensions=[])


@st.composite
def wire(draw) -> bytes:
    """A server's byte stream: real frames (some fragmented, some cut short, some oversized, some with
    reserved bits or a mask), raw garbage between them."""
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["text", "text", "binary", "fragmented", "ping", "close", "bytes",
                                     "truncated", "header", "badbits"]))
        payload = draw(st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
        if kind == "text":
            parts.append(server_frame(Opcode.TEXT, payload))
        elif kind == "binary":
            parts.append(server_frame(Opcode.BINARY, payload))
        elif kind == "fragmented":
            cut = draw(st.integers(0, len(payload)))
            parts += [server_frame(Opcode.TEXT, payload[:cut], fin=False), server_frame(Opcode.CONT, payload[cut:])]
        elif kind == "ping":
            parts.append(server_frame(Opcode.PING, payload[:125]))
        elif kind == "close":
            parts.append(server_frame(Opcode.CLOSE, payload[:125]))
        elif kind == "bytes":
            parts.append(payload)
        elif kind == "truncated":
            whole = server_frame(Opcode.TEXT, payload)
            parts.append(whole[:draw(st.integers(0, len(whole)))])
        elif kind == "header":  # a length field claiming anything up to 2**64 - 1
            length = draw(st.integers(0, 2**64 - 1))
            parts.append(bytes([0x81, 127]) + length.to_bytes(8, "big") + payload[:20])
        else:
            first = draw(st.integers(0, 255))
            parts.append(bytes([first, draw(st.integers(0, 255))]) + payload[:20])
    return b"".join(parts)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])] or [b""]


# -- the frame reader ------------------------------------------------------------------------------------

@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), wire()), cuts=st.lists(st.integers(0, 5000), max_size=8),
       max_size=st.sampled_from([16, 1000, 64 * 1024 * 1024]))
def test_frame_reader_takes_any_bytes_in_any_chunks(data, cuts, max_size):
    reader = FrameReader(max_size)
    for part in chunks(data, cuts):
        try:
            items = reader.feed(part)
        except ProtocolError as err:
            assert err.code in (1002, 1007, 1009)
            items = err.before
            bad = True
        else:
            bad = False
        for opcode, payload in items:
            assert opcode in (0x1, 0x2, 0x8, 0x9, 0xA) and isinstance(payload, bytes)
            assert len(payload) <= max_size
        if bad:
            break  # a failed connection reads no more (RFC 6455 §7.1.7)


@FUZZ
@given(payload=st.binary(max_size=200))
def test_close_payload_is_a_reason_or_a_protocol_error(payload):
    try:
        code, reason = close_reason(payload)
    except ProtocolError as err:
        assert err.code in (1002, 1007)
    else:
        assert isinstance(code, int) and isinstance(reason, str)


@FUZZ
@given(size=st.integers(17, 2**63 - 1), header=st.sampled_from([126, 127]))
def test_an_oversized_frame_fails_with_1009_before_its_payload_arrives(size, header):
    reader = FrameReader(16)
    head = bytes([0x81, header]) + (size.to_bytes(2, "big") if header == 126 and size < 65536
                                    else size.to_bytes(8, "big"))
    if header == 126 and size >= 65536:
        head = bytes([0x81, 127]) + size.to_bytes(8, "big")
    with pytest.raises(ProtocolError) as err:
        reader.feed(head)
    assert err.value.code == 1009


class Sink(asyncio.Transport):
    """Where the connection writes (its handshake, pongs, the close frame it sends when it fails)."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []
        self.closing = False

    def write(self, data) -> None:
        self.out.append(bytes(data))

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return False


async def through_connection(reader: str, data: bytes, cuts: list[int]) -> tuple[list[bytes], str]:
    """Feed ``data`` after a real handshake, as socket reads; then the server ends TCP. The messages and
    why the connection ended."""
    hs = ClientProtocol(parse_uri("ws://fuzz/ws"), max_size=1 << 20)
    hs.send_request(hs.connect())
    conn, sink = WsConnection(hs, 1 << 20, 1 << 30, reader), Sink()
    conn.connection_made(sink)
    srv = ServerProtocol()
    srv.receive_data(b"".join(sink.out))
    request = srv.events_received()[0]
    assert isinstance(request, Request)
    srv.send_response(srv.accept(request))
    conn.data_received(b"".join(srv.data_to_send()))
    for part in chunks(data, cuts):
        conn.data_received(part)
    conn.connection_lost(None)
    got: list[bytes] = []
    while True:
        try:
            got += await conn.recv_batch()
        except ConnectionClosed as closed:
            return got, str(closed)


@FEW
@given(data=st.one_of(st.binary(max_size=2000), wire()), cuts=st.lists(st.integers(0, 5000), max_size=6),
       reader=st.sampled_from(sorted(FRAME_READERS)))
def test_the_connection_survives_any_bytes_from_the_server(data, cuts, reader):
    got, why = asyncio.run(through_connection(reader, data, cuts))
    assert all(isinstance(m, (bytes, bytearray, memoryview)) for m in got)
    assert why  # the end is said: lost, or failed with its close code


# -- frame decoding -------------------------------------------------------------------------------------

ENVELOPE = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-27DEC26-100000-C.100ms",' \
           b'"data":' + encode(TICKER) + b'}}'


@FUZZ
@given(raw=st.one_of(st.binary(max_size=500), garbage.map(encode),
                     st.integers(0, len(ENVELOPE)).map(lambda n: ENVELOPE[:n]),
                     garbage.map(lambda g: encode({"jsonrpc": "2.0", "method": "subscription", "params": g})),
                     garbage.map(lambda g: encode({"method": "subscription",
                                                   "params": {"channel": g, "data": g}})),
                     garbage.map(lambda g: encode({"id": g, "result": g, "error": g, "method": g}))))
def test_any_frame_decodes_or_is_refused_and_classifies_without_raising(raw):
    note = frames.split_notification(raw)
    if note is not None:
        channel, data = note
        assert isinstance(channel, str) and channel and isinstance(data, msgspec.Raw)
    try:
        msg = frames.decode(raw)
    except DecodeError:
        return  # the session counts it: on_bad_frame("invalid JSON ...")
    kind = frames.classify(msg)
    assert isinstance(kind, (frames.Notification, frames.Response, frames.Heartbeat, Unknown))
    if isinstance(kind, Unknown):
        assert kind.reason


@FUZZ
@given(depth=st.integers(1, 100_000), opener=st.sampled_from([b"[", b'{"a":']))
def test_deeply_nested_json_is_refused_not_a_crash(depth, opener):
    raw = opener * depth
    assert frames.split_notification(raw) is None
    with pytest.raises(DecodeError):
        frames.decode(raw)


# -- the parsers -----------------------------------------------------------------------------------------

PARSERS = [parse.quote_from_ticker, parse.quote_from_quote, parse.trade, parse.trades, parse.perpetual_quote,
           parse.index_price, parse.greeks_from_ticker, parse.instrument_state,
           lambda d: parse.index_price_from_rest("btc_usd", d, datetime(2026, 1, 1, tzinfo=timezone.utc)),
           lambda d: parse_rest.candles("BTC-PERPETUAL", d), lambda d: parse_rest.option_bars(
               d, datetime(2026, 1, 1, tzinfo=timezone.utc)), lambda d: parse_rest.funding("BTC-PERPETUAL", d),
           lambda d: parse_rest.book_depth(d, 5), lambda d: parse_rest.instruments(d, []),
           lambda d: parse_rest.instruments(d)]
BASES = [TICKER, PERP, TRADE, [TRADE], {"trades": [TRADE]}, INDEX, STATE, BOOK,
         {"ticks": [NOW_MS], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0],
          "cost": [1.0], "status": "ok"},
         [{"timestamp": NOW_MS, "instrument_name": "BTC-PERPETUAL", "interest_8h": 0.0001, "interest_1h": 0.0,
           "index_price": 90000.0, "prev_index_price": 90000.0}],
         [{"instrument_name": "BTC-27DEC26-100000-C", "creation_timestamp": NOW_MS, "bid_price": 0.05,
           "ask_price": 0.06, "mid_price": 0.055, "mark_price": 0.055, "volume": 1.0, "open_interest": 2.0}],
         [{"instrument_name": "BTC-27DEC26-100000-C", "kind": "option", "expiration_timestamp": NOW_MS,
           "creation_timestamp": NOW_MS, "strike": 100000.0, "option_type": "call", "base_currency": "BTC",
           "is_active": True, "settlement_period": "month", "tick_size": 0.0005, "contract_size": 1.0}]]


def outcome(fn, data: Any) -> Any:
    try:
        return fn(data)
    except ParseError as err:
        assert str(err)  # names the field
        return err


@FUZZ
@given(data=st.one_of(garbage, st.sampled_from(BASES).flatmap(mutated)))
def test_every_parser_returns_records_or_raises_parse_error(data):
    for fn in PARSERS:
        got = outcome(fn, data)
        if not isinstance(got, ParseError):
            for rec in got if isinstance(got, list) else [got]:
                assert isinstance(rec, (Record, msgspec.Struct))


@pytest.mark.parametrize("field", ["best_ask_price", "mark_price", "timestamp"])
def test_an_integer_beyond_any_double_is_a_parse_error_not_an_overflow(field):
    """Found by the property above (CI, 2026-12-02): float() of a 300-digit JSON integer raised OverflowError."""
    for fn in PARSERS:
        got = outcome(fn, {**PERP, field: 10 ** 400})
        assert isinstance(got, (ParseError, list, Record, msgspec.Struct)), got
    assert isinstance(outcome(parse.perpetual_quote, {**PERP, field: 10 ** 400}), ParseError)


@FUZZ
@given(data=st.sampled_from([TICKER, PERP]).flatmap(mutated))
def test_the_fast_ticker_parsers_agree_with_the_dict_parsers_on_hostile_tickers(data):
    raw = encode(data)
    for fast, slow in ((parse.quote_from_ticker_json, parse.quote_from_ticker),
                       (parse.perpetual_quote_json, parse.perpetual_quote)):
        got = outcome(fast, msgspec.Raw(raw))
        try:
            want = outcome(slow, frames.decode(raw))
        except DecodeError:
            continue  # the whole text refused (e.g. a number no double holds, in a field the fast path skips)
        if isinstance(want, ParseError):
            assert isinstance(got, ParseError), (got, want)
        else:
            assert not isinstance(got, ParseError), (got, want)
            assert _same(msgspec.structs.astuple(got), msgspec.structs.astuple(want))


def _same(a: tuple, b: tuple) -> bool:
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b)) and len(a) == len(b)


# -- the stream's pipeline ---------------------------------------------------------------------------------

@FUZZ
@given(channel=st.sampled_from(sorted(CHANNELS)), data=st.data(), raw=st.booleans(),
       channel_noise=st.text(max_size=30))
def test_the_pipeline_never_raises_and_counts_every_bad_message(channel, data, raw, channel_noise):
    rows: list = []
    reported: list = []
    pipe = Pipeline("BTC", rows.append, on_bad=lambda reason, where: reported.append(reason))
    pipe.handle(channel, CHANNELS[channel])   # a good message first: some state to break (books, seqs)
    doc = data.draw(mutated(CHANNELS[channel]))
    for ch in (channel, channel_noise):
        before_rows, before_bad = len(rows), sum(pipe.bad.values())
        before = sum(v for k, v in pipe.counts.items() if k != "notifications")
        pipe.handle(ch, msgspec.Raw(encode(doc)) if raw else doc)
        moved = (len(rows) - before_rows) + (sum(pipe.bad.values()) - before_bad) + \
            (sum(v for k, v in pipe.counts.items() if k != "notifications") - before)
        assert moved or doc in ([], {"trades": []}), (ch, doc)  # each message: a row, a count or a bad one
    for r in rows:
        assert isinstance(r, Record)
    assert set(reported) <= set(pipe.bad)


NUMERIC: dict[str, list[tuple[Any, ...]]] = {  # channel -> paths to a number the row needs
    "ticker.BTC-27DEC26-100000-C.100ms": [("best_bid_price",), ("mark_iv",), ("greeks", "delta"), ("timestamp",)],
    "ticker.BTC-PERPETUAL.100ms": [("best_ask_amount",), ("current_funding",), ("timestamp",)],
    "trades.option.BTC.100ms": [(0, "price"), (0, "amount"), (0, "trade_seq"), (0, "timestamp")],
    "deribit_price_index.btc_usd": [("price",), ("timestamp",)],
    "book.BTC-PERPETUAL.100ms": [("bids", 0, 1), ("bids", 0, 2), ("asks", 0, 1), ("change_id",), ("timestamp",)],
}


@FUZZ
@given(channel=st.sampled_from(sorted(NUMERIC)), data=st.data(), raw=st.booleans(),
       wrong=st.sampled_from(["1.5", "NaN", "", True, False, [1.0], {"v": 1.0}, 10**400, float("nan")]))
def test_a_wrong_type_where_a_number_belongs_is_counted_never_stored(channel, data, raw, wrong):
    path = data.draw(st.sampled_from(NUMERIC[channel]))
    if isinstance(wrong, float) or (type(wrong) is int and not raw):
        # NaN and huge integers are numbers to Python; JSON has no NaN and the decoders (orjson, msgspec)
        # refuse integers past 64 bits: they only come as text (raw), and are refused there
        wrong = "1.5"
    doc = deepcopy(CHANNELS[channel])
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = wrong
    rows: list = []
    pipe = Pipeline("BTC", rows.append)
    pipe.handle(channel, msgspec.Raw(encode(doc)) if raw else doc)
    assert sum(pipe.bad.values()) == 1 and not rows, (pipe.bad, rows)
