"""The simulator's one listening socket: HTTP (REST + control) and WebSocket on the same port.

A small asyncio Protocol parses HTTP/1.1 requests; a WebSocket upgrade to ``/ws/api/v2`` is handed
to websockets' sans-I/O ``ServerProtocol`` (handshake, ping/pong, close), while outgoing data frames
are written directly (pre-serialised once per notification, one write per connection per tick).

What is modelled of Deribit's public API (the REST methods' own table: :mod:`collector.sim.methods`)
=============================================  ==============================================================
session / channel                              modelled / not
=============================================  ==============================================================
``public/subscribe``, ``unsubscribe``,         yes; results list what was accepted, refused channels are left
``unsubscribe_all``                            out (unknown names, delisted instruments); WS only (-32601 over
                                               HTTP); a frame over 32 kB -> -32600
``public/set_heartbeat``, ``disable_heartbeat``  ``heartbeat`` / ``test_request`` notifications; interval < 10 s
                                               -> -32602; an unanswered ``test_request`` closes the connection
``public/test``, ``public/hello``              ``{"version": ...}``
``ticker.{inst}.{interval}``                   every instrument (options with greeks/IVs, perpetual funding)
``quote.{inst}``, ``perpetual.{inst}.{i}``     yes
``book.{inst}.{interval}``                     snapshot then changes chaining ``prev_change_id``
``book.{inst}.{group}.{depth}.{interval}``     BTC's and ETH's groups (others: ETH's, /100)
``trades.{inst}.{interval}``,                  yes; ``{CUR}`` is what Deribit lists under (``BTC``, ``ETH``,
``trades.{kind}.{CUR}.{interval}``             ``USDC`` for SOL/XRP/``BTC_USDC-...``, ``any``), not ``SOL``
``deribit_price_index.{index}``                ``btc_usd``, ``eth_usd``, ``sol_usdc``, ``xrp_usdc``, ``btc_usdc``
``markprice.options.{index}``                  yes
``instrument.state.{kind}.{CUR}``              created/started on listing, closed/settled at expiry
``platform_state``(``.public_methods_state``)  subscribable; nothing is ever locked
``.raw`` intervals                             13778 (unauthenticated), the whole request refused
not modelled                                   ``incremental_ticker``, ``chart.trades``, ``deribit_price_ranking``,
                                               ``deribit_price_statistics``, ``deribit_volatility_index``,
                                               ``estimated_expiration_price``, ``announcements``, private
                                               channels, authentication, combos and spot instruments
=============================================  ==============================================================

Limits: the credit bucket (10028 ``too_many_requests``, then the WebSocket session is closed, HTTP 429
over REST), 32 connections per address (HTTP 429 for the 33rd), 11050 ``bad_request`` without ``id``
for an unparsable frame.
"""

from __future__ import annotations

import asyncio
import collections
import time
import urllib.parse
from dataclasses import dataclass, field

import orjson
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import BytesLike

from collector.sim import control, methods
from collector.sim.clock import SimClock
from collector.sim.hub import Hub
from collector.sim.market import Market
from collector.sim.rules import ConnectionLimiter, CreditBucket, CreditLimits, RpcError
from collector.sim.session import Session, envelope, now_us

WS_PATH = "/ws/api/v2"
REST_PREFIX = "/api/v2/"
MAX_WRITE_BUFFER = 64 * 1024 * 1024
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
           503: "Service Unavailable"}


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    currencies: list[str] = field(default_factory=lambda: ["BTC", "ETH"])
    strikes: int = 16
    rate: float = 1000.0
    trade_rate: float = 20.0
    speed: float = 1.0
    start_ms: int | None = None
    min_heartbeat: float = 10.0
    max_connections: int = 32
    credits: CreditLimits = field(default_factory=CreditLimits)
    trade_history: int = 100_000
    tick: float = 0.1
    testnet: bool = False


class Server:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        start = cfg.start_ms if cfg.start_ms is not None else int(time.time() * 1000)
        self.clock = SimClock(start, cfg.speed)
        self.market = Market(cfg.currencies, cfg.seed, start, strikes=cfg.strikes, trade_rate=cfg.trade_rate,
                             history=cfg.trade_history, speed=cfg.speed)
        self.market.clock_ms = self.clock.now_ms
        self.hub = Hub(self.market, cfg.rate)
        self.limiter = ConnectionLimiter(cfg.max_connections)
        self.credit_limits = cfg.credits
        self.http_credits: dict[str, CreditBucket] = {}
        self.min_heartbeat = cfg.min_heartbeat
        self.testnet = cfg.testnet
        self.conns: set[Conn] = set()
        self.requests_served = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self.stats: collections.Counter[str] = collections.Counter()
        self.stall_until = 0.0
        self.rest_errors = 0
        self.rest_error_code: int | None = None   # None: 10028 and 13028 alternately
        self.instrument_errors: dict[str, tuple[int, int | None]] = {}  # name -> (left, code)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ticker: asyncio.Task | None = None
        self.port = 0

    def count_error(self, code: int) -> None:
        self.refused[str(code)] += 1

    def stalled(self) -> bool:
        return time.monotonic() < self.stall_until

    def urls(self) -> dict:
        base = f"{self.cfg.host}:{self.port}"
        return {"ws": f"ws://{base}{WS_PATH}", "rest": f"http://{base}/api/v2", "control": f"http://{base}/_sim"}

    async def start(self) -> dict:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(lambda: Conn(self), self.cfg.host, self.cfg.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._run_ticks())
        return self.urls()

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
        if self._server:
            self._server.close()
        for conn in list(self.conns):
            conn.abort()
        if self._server:
            await self._server.wait_closed()

    async def _run_ticks(self) -> None:
        last = time.monotonic()
        step = self.cfg.tick
        while True:
            now = time.monotonic()
            if now >= self.stall_until:
                self.hub.tick(self.clock.now_ms(), now - last)
                last = now
            await asyncio.sleep(max(0.0, step - (time.monotonic() - now)))

    # ---- HTTP ----------------------------------------------------------------------------------
    def http(self, conn: "Conn", method: str, target: str, body: bytes) -> tuple[int, bytes]:
        url = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if url.path.startswith("/_sim"):
            status, obj = control.handle(self, method, url.path, query, body)
            return status, orjson.dumps(obj)
        if not url.path.startswith(REST_PREFIX):
            return 404, b'{"error":"not found"}'
        us_in = now_us()
        if conn.over_limit:
            self.count_error(429)
            return 429, b'{"error":"too many connections"}'
        if self.rest_errors > 0:
            self.rest_errors -= 1
            return self._rest_fault(us_in, self.rest_error_code)
        if self.instrument_errors and query.get("instrument_name") in self.instrument_errors:
            name = query["instrument_name"]
            left, code = self.instrument_errors[name]
            if left <= 1:
                del self.instrument_errors[name]
            else:
                self.instrument_errors[name] = (left - 1, code)
            return self._rest_fault(us_in, code)
        rpc_method = url.path[len(REST_PREFIX):]
        params: dict = query
        req_id = None
        if method == "POST" and body:
            try:
                req = orjson.loads(body)
                rpc_method, params, req_id = req.get("method", rpc_method), req.get("params") or {}, req.get("id")
            except (orjson.JSONDecodeError, AttributeError):
                return self._rpc_error(None, us_in, RpcError(11050))
        bucket = self.http_credits.setdefault(conn.addr, CreditBucket(self.credit_limits, time.monotonic()))
        if not bucket.take(time.monotonic()):
            conn.keep_alive = False
            return self._rpc_error(req_id, us_in, RpcError(10028), 429)
        if rpc_method in ("public/subscribe", "public/unsubscribe", "public/unsubscribe_all",
                          "public/set_heartbeat", "public/disable_heartbeat"):
            return self._rpc_error(req_id, us_in, RpcError(-32601))
        try:
            result = methods.call(self.market, rpc_method, params)
        except RpcError as err:
            return self._rpc_error(req_id, us_in, err)
        self.requests_served += 1
        return 200, envelope(req_id, us_in, self.testnet, result=result)

    def _rpc_error(self, req_id, us_in: int, err: RpcError, status: int = 400) -> tuple[int, bytes]:
        self.count_error(err.code)
        return status, envelope(req_id, us_in, self.testnet, error=err)

    def _rest_fault(self, us_in: int, code: int | None = None) -> tuple[int, bytes]:
        self.stats["rest_errors_injected"] += 1
        if code == 10028 or (code is None and self.stats["rest_errors_injected"] % 2):
            return self._rpc_error(None, us_in, RpcError(10028), 429)
        return self._rpc_error(None, us_in, RpcError(13028), 503)


class Conn(asyncio.Protocol):
    """One TCP connection: HTTP requests until a WebSocket upgrade, then WebSocket frames."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.addr = "?"
        self.buf = b""
        self.ws: ServerProtocol | None = None
        self.session: Session | None = None
        self.channels: set[str] = set()
        self.out: list[bytes] = []
        self.closed = False
        self.over_limit = False
        self.keep_alive = True
        self.fragments: list[BytesLike] = []

    # ---- asyncio callbacks ---------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        srv = self.server
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.addr = peer[0] if peer else "?"
        self.over_limit = not srv.limiter.acquire(self.addr)
        srv.conns.add(self)
        srv.stats["connections_opened"] += 1

    def connection_lost(self, exc) -> None:
        srv = self.server
        self.closed = True
        if not self.over_limit:
            srv.limiter.release(self.addr)
        srv.conns.discard(self)
        srv.hub.drop(self)
        if self.session:
            self.session.stop_heartbeat()
            srv.stats["ws_closed"] += 1
        srv.stats["connections_closed"] += 1

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self._ws_data(data)
            return
        self.buf += data
        while not self.closed and self.ws is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.abort()
                return
            head = self.buf[:end + 4]
            lines = head[:end].decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self.abort()
                return
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            if headers.get("upgrade", "").lower() == "websocket":
                self._upgrade(head, target)
                return
            self.keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            status, payload = self.server.http(self, method, target, body)
            self._respond(status, payload)

    # ---- HTTP ----------------------------------------------------------------------------------
    def _respond(self, status: int, payload: bytes) -> None:
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: {'keep-alive' if self.keep_alive else 'close'}\r\n\r\n")
        assert self.transport is not None
        self.transport.write(head.encode() + payload)
        if not self.keep_alive:
            self.transport.close()

    def _upgrade(self, head: bytes, target: str) -> None:
        srv = self.server
        if self.over_limit:
            srv.stats["connections_refused_429"] += 1
            self.keep_alive = False
            self._respond(429, b'{"error":"too many connections"}')
            return
        if urllib.parse.urlsplit(target).path != WS_PATH:
            self.keep_alive = False
            self._respond(404, b'{"error":"not found"}')
            return
        proto = ServerProtocol(max_size=4 * 1024 * 1024)
        proto.receive_data(head)
        request = proto.events_received()[0]
        assert isinstance(request, Request)  # a server protocol's first event is the request
        response = proto.accept(request)
        proto.send_response(response)
        self.ws = proto
        self._write_proto()
        if response.status_code != 101:
            assert self.transport is not None
            self.transport.close()
            return
        self.session = Session(srv, self)
        srv.stats["ws_opened"] += 1
        if self.buf:
            rest, self.buf = self.buf, b""
            self._ws_data(rest)

    # ---- WebSocket -----------------------------------------------------------------------------
    def _ws_data(self, data: bytes) -> None:
        proto = self.ws
        assert proto is not None
        proto.receive_data(data)
        for ev in proto.events_received():
            if self.closed:  # closing after 10028 / heartbeat: later requests are not served
                continue
            assert isinstance(ev, Frame)  # after the handshake, events are frames
            op = ev.opcode
            if op in (Opcode.TEXT, Opcode.BINARY):
                if ev.fin:
                    assert self.session is not None
                    self.session.on_text(ev.data)
                else:
                    self.fragments = [ev.data]
            elif op is Opcode.CONT and self.fragments:
                self.fragments.append(ev.data)
                if ev.fin:
                    text, self.fragments = b"".join(self.fragments), []
                    assert self.session is not None
                    self.session.on_text(text)
        self._write_proto()

    def _write_proto(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        assert self.ws is not None
        chunks = self.ws.data_to_send()
        data = b"".join(chunks)
        if data:
            self.transport.write(data)
        if chunks and chunks[-1] == b"":
            self.transport.close()

    def queue(self, frame: bytes) -> None:
        if not self.closed:
            self.out.append(frame)

    def flush(self) -> None:
        assert self.transport is not None
        if self.closed or not self.out or self.transport.is_closing():
            self.out.clear()
            return
        self._write_proto()
        self.transport.write(b"".join(self.out))
        self.out.clear()
        if self.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.server.stats["closed_slow_consumer"] += 1
            self.abort()

    def send(self, frame: bytes) -> None:
        """A response or heartbeat: now, unless the simulator is stalled (then queued)."""
        self.queue(frame)
        if self.server.stalled():
            self.server.hub.dirty.add(self)
        else:
            self.flush()

    def close(self, code: int, reason: str) -> None:
        if self.closed or self.ws is None:
            return
        self.flush()
        self.closed = True
        try:
            self.ws.send_close(code, reason)
        except Exception:  # noqa: BLE001 - already closing
            pass
        self._write_proto()
        assert self.server.loop is not None
        self.server.loop.call_later(1.0, self.abort)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
