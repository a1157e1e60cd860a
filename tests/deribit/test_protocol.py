"""JSON-RPC builders: frame limits, channel names, subscribe-result diffs."""

from __future__ import annotations

import json

import pytest

from collector.deribit import protocol as p


def test_request_ids_and_envelope(examples):
    ids = p.RequestIds(7)
    assert [ids(), next(ids)] == [7, 8]
    r = p.hello(9, "deribit-collector", "0.1.0")
    msg = json.loads(r.frame)
    req = examples.load("ws_public_hello")["request"]
    assert msg["method"] == req["method"] and set(msg["params"]) == set(req["params"])
    assert msg["jsonrpc"] == "2.0" and msg["id"] == 9 == r.id


def test_heartbeat_test_and_unsubscribe_all():
    assert json.loads(p.set_heartbeat(1, 10).frame)["params"] == {"interval": 10}
    with pytest.raises(ValueError):
        p.set_heartbeat(1, 5)
    t = json.loads(p.test(2).frame)
    assert t["method"] == "public/test" and t["id"] == 2
    assert json.loads(p.unsubscribe_all(3).frame)["method"] == "public/unsubscribe_all"


def test_subscribe_batches_250_and_order():
    chans = [p.ticker_channel(f"BTC-27DEC26-{1000 + i}-C") for i in range(1001)]
    reqs = p.subscribe_batches(chans + chans[:5], p.RequestIds())
    assert [len(r.channels) for r in reqs] == [250, 250, 250, 250, 1]
    assert [c for r in reqs for c in r.channels] == chans  # duplicates dropped, order kept
    assert len({r.id for r in reqs}) == 5
    for r in reqs:
        msg = json.loads(r.frame)
        assert msg["method"] == "public/subscribe" and msg["params"]["channels"] == list(r.channels)
        assert len(r.frame.encode()) < 32 * 1024


def test_subscribe_batches_byte_limit():
    long = [f"book.{'X' * 200}-{i}.100ms" for i in range(300)]
    reqs = p.subscribe_batches(long, p.RequestIds())
    assert all(len(r.frame.encode()) <= p.MAX_FRAME_BYTES for r in reqs)
    assert all(len(r.channels) < 250 for r in reqs)
    assert sum(len(r.channels) for r in reqs) == 300
    small = p.subscribe_batches(long[:10], p.RequestIds(), max_bytes=1000)
    assert all(len(r.frame.encode()) <= 1000 for r in small) and len(small) > 1
    with pytest.raises(ValueError):
        p.subscribe_batches(["x" * 2000], p.RequestIds(), max_bytes=1000)
    assert p.subscribe_batches([], p.RequestIds()) == []


def test_unsubscribe_batches():
    [r] = p.unsubscribe_batches(["deribit_price_index.btc_usd"], p.RequestIds())
    assert json.loads(r.frame)["method"] == "public/unsubscribe"


def test_channel_names(examples):
    assert p.ticker_channel("BTC-PERPETUAL") == "ticker.BTC-PERPETUAL.100ms"
    assert p.trades_channel("option", "eth") == "trades.option.ETH.100ms"
    assert p.price_index_channel("BTC") == "deribit_price_index.btc_usd"
    assert p.instrument_state_channel("option", "btc") == "instrument.state.option.BTC"
    assert p.quote_channel("BTC-PERPETUAL") == "quote.BTC-PERPETUAL"
    assert p.instrument_trades_channel("BTC_USDC-PERPETUAL") == "trades.BTC_USDC-PERPETUAL.100ms"
    assert p.book_channel("ETH-PERPETUAL", group="100", depth=1) == "book.ETH-PERPETUAL.100.1.100ms"
    assert p.book_channel("ETH-PERPETUAL") == "book.ETH-PERPETUAL.100ms"
    # the names match those in the examples
    assert examples.load("ws_ticker_docs")["subscribe_request"]["params"]["channels"] == ["ticker.BTC-PERPETUAL.100ms"]
    assert examples.load("ws_subscribe_result_grouped_real")["result"] == [p.book_channel("ETH-PERPETUAL", group="100", depth=1)]
    with pytest.raises(ValueError):
        p.ticker_channel("BTC-PERPETUAL", "1s")
    with pytest.raises(ValueError):
        p.trades_channel("perp", "BTC")


def test_check_subscribed_other_order_and_omissions(examples):
    req = ["a.1", "b.2", "c.3"]
    chk = p.check_subscribed(req, ["c.3", "a.1"])
    assert chk.accepted == ("a.1", "c.3") and chk.missing == ("b.2",) and chk.unexpected == () and not chk.ok
    assert p.check_subscribed(req, ["c.3", "b.2", "a.1"]).ok
    assert p.check_subscribed(req, ["a.1", "b.2", "c.3", "z"]).unexpected == ("z",)
    assert p.check_subscribed(req, None).missing == tuple(req)
    assert p.check_subscribed(req, "ok").accepted == ()
    docs = examples.load("ws_public_subscribe_docs")
    assert p.check_subscribed(docs["request"]["params"]["channels"], docs["response"]["result"]).ok
