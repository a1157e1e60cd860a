"""The Deribit REST client used by every timer job: ``GET {base}/public/{method}?params`` -> ``result``.

Exception tree (all carry ``method``, ``code``, ``message``, ``data``, ``http_status``), under
:class:`~collector.errors.CollectorError`::

    DeribitError
    ├── TransportError        network failure or timeout                      (retryable)
    ├── BadResponse           body is not JSON / has neither result nor error (retryable)
    └── ApiError              Deribit returned an error object (or a bare HTTP error status)
        ├── RateLimited       10028, 10066, HTTP 429                          (retryable; drains the bucket)
        ├── ServerError       HTTP 5xx, 10040, 10041, 11051, 11094, 13028, 13503, 13888 (retryable)
        └── InvalidParams     -32602 / -32000; ``reason`` and ``param`` from ``error.data``
            └── InstrumentNotFound  reason "instrument not found", or 13020 / 10020

:func:`is_retryable` is the one place that decides what is retried; which codes are a rate limit is
:func:`~collector.deribit.ratelimit.is_rate_limited`'s to say. Retries use capped exponential backoff
with full jitter (:func:`collector.backoff.full_jitter`), at most ``max_attempts`` tries per call.
Every request first takes credits from the shared :class:`~collector.deribit.ratelimit.CreditBucket`
(:meth:`RestClient.from_settings`: the host's one budget, :func:`collector.ratebudget.budget_for`).
A rate-limit answer (10028, 10066, HTTP 429) is counted (``rate_limited``, also in an optional shared
:class:`RestCounts`) and logged at WARNING once per burst (``deribit_rate_limited``, with the hits of the
previous burst); other retries are logged at DEBUG.

Every public method the collector calls has a typed helper below (timestamps: int ms or aware datetime);
paging through trades is :mod:`collector.deribit.paging`'s. Nothing is logged per request at INFO; URLs
(which could carry credentials) and params are never logged.
A ``requests.Session`` is not guaranteed thread-safe: use one client per thread (they share the bucket).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime
from typing import Any, Callable, Literal, Mapping, Union

import orjson
import requests

from collector.backoff import full_jitter
from collector.deribit.fields import datetime_to_ms
from collector.deribit.ratelimit import Limiter, is_rate_limited, shared_bucket
from collector.errors import CollectorError

__all__ = [
    "DeribitError", "TransportError", "BadResponse", "ApiError", "RateLimited", "ServerError",
    "InvalidParams", "InstrumentNotFound", "is_retryable", "RestClient", "RestCounts",
]

log = logging.getLogger(__name__)

Kind = Literal["future", "option", "spot", "future_combo", "option_combo"]   # a perpetual is a future
TradeKind = Literal["future", "option", "spot", "future_combo", "option_combo", "combo", "any"]
Sorting = Literal["asc", "desc", "default"]
Ms = Union[int, datetime]   # ms since the epoch, or an aware datetime


class DeribitError(CollectorError):
    def __init__(self, message: str, *, method: str = "", code: int | None = None, data: Any = None,
                 http_status: int | None = None) -> None:
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))
        self.method = method
        self.message = message
        self.code = code
        self.data = data
        self.http_status = http_status


class TransportError(DeribitError):
    """Could not talk to the server (connection refused/reset, DNS, timeout)."""


class BadResponse(DeribitError):
    """The server answered something that is not a JSON-RPC response."""


class ApiError(DeribitError):
    """Deribit answered with an error."""


class RateLimited(ApiError):
    """Too many requests (10028 / 10066 / HTTP 429)."""


class ServerError(ApiError):
    """A temporary server-side failure."""


class InvalidParams(ApiError):
    """A parameter was refused; ``reason``/``param`` come from ``error.data`` when Deribit sends them."""

    @property
    def reason(self) -> str | None:
        return self.data.get("reason") if isinstance(self.data, dict) else None

    @property
    def param(self) -> str | None:
        return self.data.get("param") if isinstance(self.data, dict) else None


class InstrumentNotFound(InvalidParams):
    """The instrument does not exist (any more): expired or a typo."""


SERVER_CODES = frozenset({10040, 10041, 11051, 11094, 13028, 13503, 13888})
INVALID_PARAM_CODES = frozenset({-32602, -32000})
NOT_FOUND_CODES = frozenset({13020, 10020})


def is_retryable(exc: BaseException) -> bool:
    """The one rule: network trouble, garbage bodies, rate limits and server-side failures are retried;
    everything else (bad params, unknown instrument, method not found, ...) is the caller's to handle."""
    return isinstance(exc, (TransportError, BadResponse, RateLimited, ServerError))


def error_from_body(method: str, error: Any, http_status: int | None) -> ApiError:
    """Map a JSON-RPC ``error`` object to the exception tree."""
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return ApiError(f"malformed error object {error!r:.200}", method=method, http_status=http_status)
    code, message, data = error["code"], str(error.get("message", "")), error.get("data")
    kw = dict(method=method, code=code, data=data, http_status=http_status)
    if is_rate_limited(code):
        return RateLimited(message, **kw)
    if code in SERVER_CODES:
        return ServerError(message, **kw)
    if code in NOT_FOUND_CODES:
        return InstrumentNotFound(message, **kw)
    if code in INVALID_PARAM_CODES:
        reason = data.get("reason") if isinstance(data, dict) else None
        if isinstance(reason, str) and "not found" in reason and "instrument" in reason:
            return InstrumentNotFound(message, **kw)
        return InvalidParams(message, **kw)
    return ApiError(message, **kw)


class RestCounts:
    """Counters shared by the short-lived clients of one job (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0   # answers 10028 / 10066 / HTTP 429

    def add(self, requests: int = 0, retries: int = 0, rate_limited: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.rate_limited += rate_limited


RATE_LIMIT_BURST_S = 30.0   # rate-limit answers closer together than this are one burst (one WARNING)


class _BurstLog:
    """Process-wide: a WARNING for the first rate-limit answer of a burst, the others only counted."""

    def __init__(self, quiet_s: float = RATE_LIMIT_BURST_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s = quiet_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._hits = 0          # of the burst going on

    def hit(self) -> int | None:
        """Count one hit; the size of the previous burst (0 for the first) when this one starts a burst."""
        with self._lock:
            now = self._clock()
            fresh = self._last is None or now - self._last >= self.quiet_s
            self._last = now
            if not fresh:
                self._hits += 1
                return None
            previous, self._hits = self._hits, 1
            return previous


_bursts = _BurstLog()


def _param(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return datetime_to_ms(v)
    return v


class RestClient:
    """``call("public/ticker", instrument_name=...)`` -> the decoded ``result``; typed helpers below.

    ``base_url`` is e.g. ``https://www.deribit.com/api/v2`` or ``http://127.0.0.1:PORT/api/v2``.
    ``timeout`` (seconds) applies to connect and to each read; it is always set.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, max_attempts: int = 5,
                 backoff_base_s: float = 0.5, backoff_cap_s: float = 30.0, rate_limit_pause_s: float = 1.0,
                 limiter: Limiter | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 user_agent: str = "deribit-collector", counts: RestCounts | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = (float(timeout), float(timeout))
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.rate_limit_pause_s = rate_limit_pause_s
        self.limiter = limiter if limiter is not None else shared_bucket()
        self.session = session if session is not None else requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.counts = counts
        self.requests = 0       # HTTP requests sent (including retries)
        self.retries = 0        # of which retries
        self.rate_limited = 0   # answers 10028 / 10066 / HTTP 429

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> "RestClient":
        """Build from :class:`collector.config.Settings` (``rest_url``, ``rest_timeout_s``); without a
        ``limiter``, the host's shared credit budget (:func:`collector.ratebudget.budget_for`)."""
        if kw.get("limiter") is None:
            from collector.ratebudget import budget_for  # here: ratebudget imports the ratelimit module
            kw["limiter"] = budget_for(settings)
        return cls(settings.rest_url, timeout=settings.rest_timeout_s, **kw)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "RestClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0)."""
        return full_jitter(attempt, self.backoff_base_s, self.backoff_cap_s, rng=self._rng)

    def call(self, method: str, **params: Any) -> Any:
        """Call ``method`` (e.g. ``"public/ticker"``) with retries; returns ``result`` or raises DeribitError."""
        query = {k: _param(v) for k, v in params.items() if v is not None}
        attempt = 0
        while True:
            try:
                return self._once(method, query)
            except DeribitError as exc:
                if isinstance(exc, RateLimited):
                    self._rate_limited(method, exc)
                if not is_retryable(exc) or attempt + 1 >= self.max_attempts:
                    raise
                delay = self.backoff(attempt)
                log.debug("deribit_rest_retry", extra={"method": method, "attempt": attempt + 1,
                                                       "error": type(exc).__name__, "code": exc.code,
                                                       "delay_s": round(delay, 3)})
                attempt += 1
                self.retries += 1
                if self.counts is not None:
                    self.counts.add(retries=1)
                self._sleep(delay)

    def _rate_limited(self, method: str, exc: DeribitError) -> None:
        """Count it, drain the (shared) pool, and say so once per burst."""
        self.rate_limited += 1
        if self.counts is not None:
            self.counts.add(rate_limited=1)
        self.limiter.drain(self.rate_limit_pause_s)
        previous = _bursts.hit()
        if previous is not None:
            log.warning("deribit_rate_limited", extra={
                "method": method, "code": exc.code, "http_status": exc.http_status,
                "pause_s": self.rate_limit_pause_s, "previous_burst_hits": previous,
                "action": "pausing every caller of this budget, then retrying"})

    def _once(self, method: str, query: Mapping[str, Any]) -> Any:
        self.limiter.acquire()
        self.requests += 1
        if self.counts is not None:
            self.counts.add(requests=1)
        try:
            resp = self.session.get(f"{self.base_url}/{method}", params=query, timeout=self.timeout)
            status, body = resp.status_code, resp.content
        except requests.RequestException as exc:
            # the exception text may contain the URL; keep only its type
            raise TransportError(type(exc).__name__, method=method) from None
        try:
            msg = orjson.loads(body)
        except orjson.JSONDecodeError:
            msg = None
        if isinstance(msg, dict) and "error" in msg:
            raise error_from_body(method, msg["error"], status)
        if is_rate_limited(http_status=status):
            raise RateLimited(f"HTTP {status}", method=method, http_status=status)
        if status >= 500:
            raise ServerError(f"HTTP {status}", method=method, http_status=status)
        if not isinstance(msg, dict):
            raise BadResponse(f"HTTP {status}: body is not a JSON object", method=method, http_status=status)
        if status >= 400:
            raise ApiError(f"HTTP {status}", method=method, http_status=status)
        if "result" not in msg:
            raise BadResponse("response has neither result nor error", method=method, http_status=status)
        return msg["result"]

    # -- typed helpers: one per public method the collector calls ---------------------------------

    def get_time(self) -> int:
        return self.call("public/get_time")

    def get_instruments(self, currency: str, kind: Kind | None = None, expired: bool = False) -> list:
        return self.call("public/get_instruments", currency=currency, kind=kind, expired=expired)

    def get_book_summary_by_currency(self, currency: str, kind: Kind | None = None) -> list:
        return self.call("public/get_book_summary_by_currency", currency=currency, kind=kind)

    def get_index_price(self, index_name: str) -> dict:
        return self.call("public/get_index_price", index_name=index_name)

    def ticker(self, instrument: str) -> dict:
        return self.call("public/ticker", instrument_name=instrument)

    def get_order_book(self, instrument: str, depth: int | None = None) -> dict:
        return self.call("public/get_order_book", instrument_name=instrument, depth=depth)

    def get_tradingview_chart_data(self, instrument: str, start: Ms, end: Ms, resolution: str | int = "1") -> dict:
        return self.call("public/get_tradingview_chart_data", instrument_name=instrument,
                         start_timestamp=start, end_timestamp=end, resolution=str(resolution))

    def get_funding_rate_history(self, instrument: str, start: Ms, end: Ms) -> list:
        return self.call("public/get_funding_rate_history", instrument_name=instrument,
                         start_timestamp=start, end_timestamp=end)

    def get_last_trades_by_instrument(self, instrument: str, start_seq: int | None = None,
                                      end_seq: int | None = None, count: int | None = None,
                                      sorting: Sorting | None = None) -> dict:
        """``{trades: [...], has_more: bool}``; ``count`` 1..1000."""
        return self.call("public/get_last_trades_by_instrument", instrument_name=instrument,
                         start_seq=start_seq, end_seq=end_seq, count=count, sorting=sorting)

    def get_last_trades_by_instrument_and_time(self, instrument: str, start: Ms, end: Ms, count: int | None = None,
                                               sorting: Sorting | None = None) -> dict:
        return self.call("public/get_last_trades_by_instrument_and_time", instrument_name=instrument,
                         start_timestamp=start, end_timestamp=end, count=count, sorting=sorting)

    def get_last_trades_by_currency(self, currency: str, kind: TradeKind | None = None, count: int | None = None,
                                    sorting: Sorting | None = None, start_id: str | None = None,
                                    end_id: str | None = None) -> dict:
        """``{trades: [...], has_more: bool}``: the newest ``count`` (1..1000) ``kind`` trades of ``currency``."""
        return self.call("public/get_last_trades_by_currency", currency=currency, kind=kind, count=count,
                         sorting=sorting, start_id=start_id, end_id=end_id)

    def get_last_trades_by_currency_and_time(self, currency: str, start: Ms, end: Ms, kind: TradeKind | None = None,
                                             count: int | None = None, sorting: Sorting | None = None) -> dict:
        """``{trades: [...], has_more: bool}`` of every ``kind`` instrument of ``currency``; ``count`` 1..1000."""
        return self.call("public/get_last_trades_by_currency_and_time", currency=currency, kind=kind,
                         start_timestamp=start, end_timestamp=end, count=count, sorting=sorting)
