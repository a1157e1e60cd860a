"""decode + classify: every example envelope, and garbage that must become Unknown/DecodeError."""

from __future__ import annotations

import random

import pytest

from collector.deribit.frames import (
    DecodeError, Heartbeat, Notification, ParseError, Response, RpcError, Unknown, classify, decode,
)


def test_decode_bytes_and_str(examples):
    raw = examples.raw("ws_trades_real_ccxt_usdc_perp")
    assert decode(raw) == decode(raw.decode())


@pytest.mark.parametrize("raw", [b"", b"{", b'{"jsonrpc":"2.0","id":1,"result":[1,2', b"\xff\xfe", "nul\x00", b"NaN"])
def test_decode_invalid_json_is_clean_error(raw):
    with pytest.raises(DecodeError) as err:
        decode(raw)
    assert isinstance(err.value, ParseError)


def test_decode_truncated_real_frame(examples):
    raw = examples.raw("ws_trades_real_ccxt_usdc_perp")
    for cut in range(1, len(raw) - 1, 7):
        with pytest.raises(DecodeError):
            decode(raw[:cut])


def test_notification(examples):
    f = classify(examples.load("ws_trades_real_ccxt_usdc_perp"))
    assert isinstance(f, Notification) and f.channel == "trades.BTC_USDC-PERPETUAL.100ms"
    assert f.data[0]["trade_id"] == "USDC-2436803"
    f = classify(examples.notification("ws_ticker_docs"))
    assert f.channel == "ticker.BTC-PERPETUAL.100ms" and f.data["instrument_name"] == "BTC-PERPETUAL"


def test_heartbeats(examples):
    assert classify(examples.load("ws_heartbeat_test_request_real")) == Heartbeat("test_request")
    assert classify({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "heartbeat"}}) == Heartbeat("heartbeat")


def test_responses(examples):
    f = classify(examples.load("ws_set_heartbeat_result_real"))
    assert f == Response("b1288e7d-5f00-4d7f-b89f-66ae19b56563", "ok", None)
    f = classify(examples.load("ws_subscribe_result_grouped_real"))
    assert f.result == ["book.ETH-PERPETUAL.100.1.100ms"]
    f = classify(examples.envelope("ws_public_subscribe_docs"))
    assert f.id == 3600 and f.error is None
    f = classify(examples.load("rest_get_tradingview_chart_data_real_ccxt"))
    assert f.id is None and f.result["status"] == "ok"


def test_errors_with_and_without_id(examples):
    f = classify(examples.load("ws_error_no_id_real"))
    assert f == Response(None, None, RpcError(11050, "bad_request", None))
    f = classify(examples.load("rest_error_invalid_params_real"))
    assert f.error.code == -32602 and f.error.data == {"reason": "instrument not found", "param": "instrument_name"}
    f = classify(examples.load("ws_error_13778_real_truncated"))
    assert (f.id, f.error.code) == (1, 13778)
    for item in examples.load("ws_error_invalid_params_real_testnet"):
        assert isinstance(classify(item).error, RpcError)
    assert classify(examples.load("rest_envelope_error_2019docs")).error.message == "bad_request"


@pytest.mark.parametrize("msg", [
    None, 1, "x", [], [{"result": 1}], {},
    {"method": "subscription"},
    {"method": "subscription", "params": []},
    {"method": "subscription", "params": {"data": {}}},
    {"method": "subscription", "params": {"channel": 5, "data": {}}},
    {"method": "subscription", "params": {"channel": "", "data": {}}},
    {"method": "subscription", "params": {"channel": "ticker.X.100ms"}},
    {"method": "heartbeat"},
    {"method": "heartbeat", "params": {"type": 1}},
    {"id": 1.5, "result": 1},
    {"id": [1], "result": 1},
    {"id": 1, "error": "boom"},
    {"id": 1, "error": {"code": "10028"}},
    {"method": "public/something_else"},
    {"jsonrpc": "2.0", "usIn": 1},
])
def test_malformed_become_unknown(msg):
    f = classify(msg)
    assert isinstance(f, Unknown) and f.reason


def test_classify_never_raises_on_random_structures():
    rng = random.Random(7)
    atoms = [None, 0, 1.5, "", "subscription", "heartbeat", True, [], {}]
    keys = ["method", "params", "channel", "data", "id", "result", "error", "type", "code", "message"]

    def gen(depth: int):
        if depth <= 0 or rng.random() < 0.3:
            return rng.choice(atoms)
        if rng.random() < 0.2:
            return [gen(depth - 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(keys): gen(depth - 1) for _ in range(rng.randint(0, 4))}

    kinds: dict[type, int] = {}
    for _ in range(5000):
        msg = gen(4)
        f = classify(msg)
        kinds[type(f)] = kinds.get(type(f), 0) + 1
        # every frame is one of the four kinds, and each kind's invariant holds
        if isinstance(f, Notification):
            assert isinstance(f.channel, str) and f.channel
        elif isinstance(f, Heartbeat):
            assert f.type in ("heartbeat", "test_request")
        elif isinstance(f, Response):
            assert f.error is None or isinstance(f.error, RpcError)
        else:
            assert isinstance(f, Unknown) and isinstance(f.reason, str) and f.reason
    assert kinds.get(Unknown, 0) > 1000   # random structures are mostly not Deribit messages


def test_split_notification_fast_path(examples):
    import orjson

    from collector.deribit.frames import split_notification
    raw = examples.raw("ws_trades_real_ccxt_usdc_perp")
    channel, data = split_notification(raw)
    assert channel == "trades.BTC_USDC-PERPETUAL.100ms"
    assert orjson.loads(bytes(data)) == decode(data) == decode(raw)["params"]["data"]
    assert split_notification(raw.decode()) is not None
    for other in (examples.load("ws_heartbeat_test_request_real"), {"jsonrpc": "2.0", "id": 1, "result": []},
                  {"method": "subscription", "params": {"channel": "x"}},
                  {"method": "subscription", "params": {"channel": "", "data": 1}},
                  {"method": "subscription", "params": 5}, {"method": 5}, [1]):
        assert split_notification(orjson.dumps(other)) is None
    for garbage in (b"", b"{", b"\xff\xfe", raw[:-3]):
        assert split_notification(garbage) is None
