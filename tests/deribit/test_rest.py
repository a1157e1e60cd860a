"""The REST client against a real tiny HTTP server on 127.0.0.1 serving canned Deribit responses."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from collector.deribit import parse as P
from collector.deribit.ratelimit import CreditBucket
from collector.deribit.rest import (
    ApiError, BadResponse, DeribitError, InstrumentNotFound, InvalidParams, RateLimited, RestClient,
    ServerError, TransportError, is_retryable,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


class CannedDeribit:
    """Serves ``/api/v2/public/<method>``: queued (status, body, delay) per method, else ``default``."""

    def __init__(self) -> None:
        self.queues: dict[str, list[tuple[int, bytes, float]]] = {}
        self.default: dict[str, tuple[int, bytes]] = {}
        self.seen: list[tuple[str, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                method = url.path.rsplit("/", 1)[-1]
                owner.seen.append((url.path, dict(parse_qsl(url.query))))
                q = owner.queues.get(method)
                if q:
                    status, body, delay = q.pop(0)
                else:
                    status, body = owner.default.get(method, (400, b'{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"}}'))
                    delay = 0.0
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2"

    def push(self, method: str, status: int, body, delay: float = 0.0) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.queues.setdefault(method, []).append((status, body, delay))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    s = CannedDeribit()
    yield s
    s.close()


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def client(server, fake_time):
    limiter = CreditBucket(clock=fake_time, sleep=fake_time.sleep)
    c = RestClient(server.url, timeout=5.0, max_attempts=4, backoff_base_s=0.5, backoff_cap_s=4.0,
                   limiter=limiter, sleep=fake_time.sleep, rng=random.Random(1))
    yield c
    c.close()


def test_result_and_query(server, client, examples):
    server.push("get_index_price", 200, examples.envelope("rest_get_index_price"))
    assert client.get_index_price("btc_usd") == {"index_price": 11628.81, "estimated_delivery_price": 11628.81}
    path, query = server.seen[-1]
    assert path == "/api/v2/public/get_index_price" and query == {"index_name": "btc_usd"}


def test_booleans_none_and_datetimes_in_query(server, client, examples):
    server.push("get_instruments", 200, examples.envelope("rest_get_instruments_real_2021_BTC"))
    result = client.get_instruments("BTC", expired=False)
    assert len(P.instruments(result)) == 398
    assert server.seen[-1][1] == {"currency": "BTC", "expired": "false"}
    server.push("get_instruments", 200, {"jsonrpc": "2.0", "result": []})
    client.get_instruments("ETH", "option", True)
    assert server.seen[-1][1] == {"currency": "ETH", "kind": "option", "expired": "true"}
    server.push("get_tradingview_chart_data", 200, examples.envelope("rest_get_tradingview_chart_data_real_ccxt"))
    start = datetime(2024, 3, 13, 11, 0, tzinfo=timezone.utc)
    res = client.get_tradingview_chart_data("BTC_USDT", start, 1710328421000, 60)
    assert server.seen[-1][1] == {"instrument_name": "BTC_USDT", "start_timestamp": "1710327600000",
                                  "end_timestamp": "1710328421000", "resolution": "60"}
    assert P.candles("BTC_USDT", res)[0].close == 73448.39


def test_trades_helpers_query(server, client, examples):
    server.push("get_last_trades_by_instrument", 200, examples.envelope("rest_get_last_trades_by_instrument"))
    res = client.get_last_trades_by_instrument("BTC-PERPETUAL", start_seq=36790, end_seq=36800, count=1000, sorting="asc")
    assert server.seen[-1][1] == {"instrument_name": "BTC-PERPETUAL", "start_seq": "36790", "end_seq": "36800",
                                  "count": "1000", "sorting": "asc"}
    assert P.trades(res)[0].trade_seq == 36798 and res["has_more"] is True
    server.push("get_last_trades_by_instrument_and_time", 200, examples.envelope("rest_get_last_trades_by_instrument_and_time"))
    client.get_last_trades_by_instrument_and_time("BTC-PERPETUAL", 1, 2, count=10)
    assert server.seen[-1][1] == {"instrument_name": "BTC-PERPETUAL", "start_timestamp": "1",
                                  "end_timestamp": "2", "count": "10"}
    server.push("get_order_book", 200, examples.envelope("rest_get_order_book"))
    assert P.book_depth(client.get_order_book("BTC-PERPETUAL", 5), 5).change_id == 474988
    assert server.seen[-1][1] == {"instrument_name": "BTC-PERPETUAL", "depth": "5"}


def test_trades_by_currency_and_time_query(server, client, examples):
    server.push("get_last_trades_by_currency_and_time", 200,
                examples.envelope("rest_get_last_trades_by_currency_and_time"))
    start = datetime(2024, 3, 13, 11, 0, tzinfo=timezone.utc)
    res = client.get_last_trades_by_currency_and_time("BTC", start, 1710328421000, kind="option", count=1000,
                                                      sorting="asc")
    assert server.seen[-1] == ("/api/v2/public/get_last_trades_by_currency_and_time",
                               {"currency": "BTC", "kind": "option", "start_timestamp": "1710327600000",
                                "end_timestamp": "1710328421000", "count": "1000", "sorting": "asc"})
    assert P.trades(res) and "has_more" in res


def test_10028_is_retried_and_drains_the_bucket(server, client, examples):
    server.push("ticker", 400, {"jsonrpc": "2.0", "error": {"code": 10028, "message": "too_many_requests"}})
    server.push("ticker", 200, examples.envelope("rest_ticker"))
    assert client.ticker("BTC-PERPETUAL")["instrument_name"] == "BTC-PERPETUAL"
    assert client.limiter.drained == 1 and client.retries == 1 and client.requests == 2
    assert len(server.seen) == 2


def test_500_and_malformed_json_are_retried(server, client, fake_time, examples):
    server.push("get_index_price", 500, b"<html>Internal Server Error</html>")
    server.push("get_index_price", 200, b'{"jsonrpc":"2.0","result":{"index_pri')
    server.push("get_index_price", 503, {"jsonrpc": "2.0", "error": {"code": 11094, "message": "internal_server_error"}})
    server.push("get_index_price", 200, examples.envelope("rest_get_index_price"))
    assert client.get_index_price("btc_usd")["index_price"] == 11628.81
    assert client.retries == 3
    # full jitter, capped exponential: attempt k waits in [0, min(4, 0.5 * 2**k)]
    assert len(fake_time.sleeps) == 3
    for k, s in enumerate(fake_time.sleeps):
        assert 0.0 <= s <= min(4.0, 0.5 * 2 ** k)


def test_retries_are_bounded(server, client):
    for _ in range(10):
        server.push("get_time", 502, b"bad gateway")
    with pytest.raises(ServerError) as err:
        client.get_time()
    assert err.value.http_status == 502 and len(server.seen) == 4


def test_instrument_not_found_is_not_retried(server, client, examples):
    server.push("get_tradingview_chart_data", 400, examples.raw("rest_error_invalid_params_real"))
    with pytest.raises(InstrumentNotFound) as err:
        client.get_tradingview_chart_data("BTC-1JAN20", 0, 1)
    e = err.value
    assert isinstance(e, InvalidParams) and e.code == -32602
    assert (e.reason, e.param) == ("instrument not found", "instrument_name")
    assert len(server.seen) == 1 and not is_retryable(e)


def test_other_errors(server, client):
    server.push("get_order_book", 400, {"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params",
                                                                    "data": {"reason": "wrong format", "param": "depth"}}})
    with pytest.raises(InvalidParams) as err:
        client.get_order_book("BTC-PERPETUAL", 7)
    assert type(err.value) is InvalidParams and err.value.param == "depth"
    server.push("get_time", 400, {"jsonrpc": "2.0", "error": {"code": 11050, "message": "bad_request"}})
    with pytest.raises(ApiError) as err2:
        client.get_time()
    assert type(err2.value) is ApiError and err2.value.code == 11050
    server.push("get_time", 200, {"jsonrpc": "2.0", "usIn": 1})
    server.push("get_time", 200, b"[1,2]")
    server.push("get_time", 429, b"")
    server.push("get_time", 200, {"jsonrpc": "2.0", "result": 1700000000000})
    assert client.get_time() == 1700000000000
    assert client.retries == 3
    with pytest.raises(ApiError):  # no handler for this method: -32601, not retried
        client.call("public/no_such_method")


def test_transport_errors(fake_time):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = RestClient(f"http://127.0.0.1:{port}/api/v2", timeout=2.0, max_attempts=3,
                   limiter=CreditBucket(clock=fake_time, sleep=fake_time.sleep), sleep=fake_time.sleep)
    with pytest.raises(TransportError) as err:
        c.get_time()
    assert str(port) not in str(err.value)  # no URL in the message
    assert c.requests == 3 and is_retryable(err.value)
    c.close()


def test_read_timeout_is_a_transport_error(server, fake_time):
    server.push("get_time", 200, {"jsonrpc": "2.0", "result": 1}, delay=1.0)
    c = RestClient(server.url, timeout=0.2, max_attempts=1,
                   limiter=CreditBucket(clock=fake_time, sleep=fake_time.sleep), sleep=fake_time.sleep)
    with pytest.raises(TransportError):
        c.get_time()
    c.close()


def test_defaults_and_settings():
    from collector.config import Settings

    c = RestClient.from_settings(Settings.load({"DERIBIT_REST_URL": "http://127.0.0.1:1/api/v2/", "REST_TIMEOUT": "3s"}))
    assert c.base_url == "http://127.0.0.1:1/api/v2" and c.timeout == (3.0, 3.0)
    c.close()
    with pytest.raises(ValueError):
        RestClient("http://x", max_attempts=0)
    assert issubclass(RateLimited, DeribitError) and issubclass(BadResponse, DeribitError)
