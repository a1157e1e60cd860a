"""Pure JSON-RPC builders for the Deribit WebSocket session (API.md §2, §5, §6, §8).

Requests are returned as ready-to-send text (``str``; WebSocket text frames). Nothing here does I/O;
the request id counter belongs to the session that uses it.
"""

from __future__ import annotations

import itertools
from typing import Iterable, NamedTuple, Sequence

import orjson

__all__ = [
    "MAX_CHANNELS_PER_SUBSCRIBE", "MAX_FRAME_BYTES", "RequestIds", "Request", "request",
    "subscribe_batches", "unsubscribe_batches", "set_heartbeat", "test", "hello", "unsubscribe_all",
    "ticker_channel", "quote_channel", "trades_channel", "instrument_trades_channel",
    "price_index_channel", "instrument_state_channel", "book_channel", "SubscribeCheck",
    "check_subscribed",
]

MAX_CHANNELS_PER_SUBSCRIBE = 250   # [I439]: larger subscribe batches hit "request entity too large"
MAX_FRAME_BYTES = 32 * 1024 - 512  # one WS frame must stay under 32 kB (-32600); keep a margin
MIN_HEARTBEAT_S = 10
INTERVALS = ("100ms", "agg2", "raw")  # raw needs authentication (13778 otherwise)


class RequestIds:
    """Monotonic integer request ids for one session (``next(ids)`` or ``ids()``)."""

    __slots__ = ("_count",)

    def __init__(self, start: int = 1) -> None:
        self._count = itertools.count(start)

    def __call__(self) -> int:
        return next(self._count)

    __next__ = __call__

    def __iter__(self) -> "RequestIds":
        return self


class Request(NamedTuple):
    """One request ready to send: its id (to match the response), method, channels if any, the frame."""

    id: int
    method: str
    frame: str
    channels: tuple[str, ...] = ()


def request(rid: int, method: str, params: dict | None = None) -> str:
    """``{"jsonrpc":"2.0","id":rid,"method":method,"params":params}`` as text."""
    msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
    return orjson.dumps(msg).decode()


def _batches(channels: Sequence[str], max_channels: int, max_bytes: int) -> list[list[str]]:
    overhead = len(request(2**53, "public/unsubscribe", {"channels": []}))
    out: list[list[str]] = []
    cur: list[str] = []
    size = overhead
    for ch in channels:
        cost = len(orjson.dumps(ch)) + 1  # quoted + comma
        if overhead + cost > max_bytes:
            raise ValueError(f"channel name too long for one frame: {ch[:60]!r}...")
        if cur and (len(cur) >= max_channels or size + cost > max_bytes):
            out.append(cur)
            cur, size = [], overhead
        cur.append(ch)
        size += cost
    if cur:
        out.append(cur)
    return out


def subscribe_batches(channels: Iterable[str], next_id, *, method: str = "public/subscribe",
                      max_channels: int = MAX_CHANNELS_PER_SUBSCRIBE,
                      max_bytes: int = MAX_FRAME_BYTES) -> list[Request]:
    """Split ``channels`` (duplicates dropped, order kept) into subscribe requests of at most
    ``max_channels`` channels and ``max_bytes`` serialized bytes each. ``next_id`` gives request ids."""
    uniq = list(dict.fromkeys(channels))
    out = []
    for batch in _batches(uniq, max_channels, max_bytes):
        rid = next_id()
        frame = request(rid, method, {"channels": batch})
        assert len(frame.encode()) <= max_bytes, "frame size estimate was wrong"
        out.append(Request(rid, method, frame, tuple(batch)))
    return out


def unsubscribe_batches(channels: Iterable[str], next_id, **kw) -> list[Request]:
    """As :func:`subscribe_batches`, for ``public/unsubscribe``."""
    return subscribe_batches(channels, next_id, method="public/unsubscribe", **kw)


def set_heartbeat(rid: int, interval: int | float = 10, minimum: float = MIN_HEARTBEAT_S) -> Request:
    """``public/set_heartbeat``; Deribit's minimum interval is 10 s (``minimum`` is lowered only for the
    simulator in tests)."""
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < minimum:
        raise ValueError(f"heartbeat interval must be a number >= {minimum} seconds")
    return Request(rid, "public/set_heartbeat", request(rid, "public/set_heartbeat", {"interval": interval}))


def test(rid: int) -> Request:
    """``public/test``: the answer to a ``test_request`` heartbeat."""
    return Request(rid, "public/test", request(rid, "public/test"))


setattr(test, "__test__", False)  # not a pytest test


def hello(rid: int, client_name: str, client_version: str) -> Request:
    params = {"client_name": client_name, "client_version": client_version}
    return Request(rid, "public/hello", request(rid, "public/hello", params))


def unsubscribe_all(rid: int) -> Request:
    return Request(rid, "public/unsubscribe_all", request(rid, "public/unsubscribe_all"))


def _interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, not {interval!r}")
    return interval


def ticker_channel(instrument: str, interval: str = "100ms") -> str:
    return f"ticker.{instrument}.{_interval(interval)}"


def quote_channel(instrument: str) -> str:
    return f"quote.{instrument}"


def trades_channel(kind: str, currency: str, interval: str = "100ms") -> str:
    """``trades.{kind}.{CUR}.{interval}``, e.g. ``trades.option.ETH.100ms``."""
    if kind not in ("future", "option", "spot", "combo"):
        raise ValueError(f"kind must be future, option, spot or combo, not {kind!r}")
    return f"trades.{kind}.{currency.upper()}.{_interval(interval)}"


def instrument_trades_channel(instrument: str, interval: str = "100ms") -> str:
    return f"trades.{instrument}.{_interval(interval)}"


def price_index_channel(currency: str, quote: str = "usd") -> str:
    """``deribit_price_index.btc_usd`` for ``BTC``."""
    return f"deribit_price_index.{currency.lower()}_{quote.lower()}"


def instrument_state_channel(kind: str, currency: str) -> str:
    """``instrument.state.{kind}.{CUR}`` (kind ``future|option|spot|combo|any``)."""
    return f"instrument.state.{kind}.{currency.upper()}"


def book_channel(instrument: str, interval: str = "100ms", group: str | None = None,
                 depth: int | None = None) -> str:
    """``book.{inst}.{interval}`` or, with group and depth, ``book.{inst}.{group}.{depth}.{interval}``."""
    if (group is None) != (depth is None):
        raise ValueError("give both group and depth, or neither")
    if group is None:
        return f"book.{instrument}.{_interval(interval)}"
    return f"book.{instrument}.{group}.{depth}.{_interval(interval)}"


class SubscribeCheck(NamedTuple):
    """What a subscribe (or unsubscribe) result says: ``accepted`` in request order, ``missing`` (asked
    for, not returned: silently refused) and ``unexpected`` (returned, never asked for in this request)."""

    accepted: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def check_subscribed(requested: Iterable[str], result: object) -> SubscribeCheck:
    """Diff requested channels against a subscribe result (a list of names in any order).

    A result that is not a list of strings counts as nothing accepted.
    """
    req = list(dict.fromkeys(requested))
    got = {c for c in result if isinstance(c, str)} if isinstance(result, list) else set()
    req_set = set(req)
    return SubscribeCheck(
        tuple(c for c in req if c in got),
        tuple(c for c in req if c not in got),
        tuple(sorted(got - req_set)),
    )
