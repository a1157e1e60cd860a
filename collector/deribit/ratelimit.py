"""Deribit's credit scheme as a thread-safe token bucket shared by every REST caller in the process.

Defaults follow the documented non-matching-engine limits (API.md §8): each request costs 500
credits, the pool holds at most 50,000 and refills at 10,000 credits/s (20 requests/s sustained,
bursts of 100). When Deribit answers 10028 anyway (other processes on the same IP, a stricter per-IP
public limit), :meth:`CreditBucket.drain` empties the pool and pauses everyone, so the process backs off
as a whole instead of each thread hammering on.

Clock and sleep are injectable so tests never depend on the wall clock.

:func:`is_rate_limited` is the one place that says which answers mean "too many requests" (API.md §3,
§8): the REST client maps them to ``RateLimited`` and the WebSocket session reconnects later on them.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

__all__ = ["CreditBucket", "Limiter", "shared_bucket", "DEFAULT_COST", "DEFAULT_CAPACITY", "DEFAULT_REFILL_PER_S",
           "RATE_LIMIT_CODES", "RATE_LIMIT_HTTP_STATUS", "is_rate_limited"]

DEFAULT_COST = 500
DEFAULT_CAPACITY = 50_000
DEFAULT_REFILL_PER_S = 10_000
_EPSILON = 1e-6  # credits

RATE_LIMIT_CODES = frozenset({10028, 10066})  # too_many_requests, too_many_concurrent_requests
RATE_LIMIT_HTTP_STATUS = 429                  # more than 32 connections from one IP


def is_rate_limited(code: int | None = None, http_status: int | None = None) -> bool:
    """True when a JSON-RPC error ``code`` (REST or WebSocket) or an HTTP status says "too many requests"."""
    return code in RATE_LIMIT_CODES or http_status == RATE_LIMIT_HTTP_STATUS


class Limiter(Protocol):
    """What a REST client needs of a credit pool: this bucket, the host's file-backed one
    (:class:`collector.ratebudget.FileBucket`) or a view of either with a margin."""

    def acquire(self, cost: float | None = None) -> float: ...

    def drain(self, pause_s: float = 0.0) -> None: ...


class Blocking:
    """``acquire`` from ``try_acquire`` (seconds to wait, 0 when taken): one loop for every bucket kind.
    The bucket provides ``_lock``, ``_sleep`` and ``waited_s``."""

    _lock: threading.Lock
    _sleep: Callable[[float], None]
    waited_s: float

    def try_acquire(self, cost: float | None = None) -> float:
        raise NotImplementedError

    def acquire(self, cost: float | None = None) -> float:
        """Block until the credits are taken; returns the seconds spent waiting."""
        waited = 0.0
        while True:
            wait = self.try_acquire(cost)
            if wait <= 0.0:
                if waited:
                    with self._lock:
                        self.waited_s += waited
                return waited
            self._sleep(wait)
            waited += wait


class CreditBucket(Blocking):
    """``acquire()`` blocks until ``cost`` credits are available, then takes them.

    Starts full. ``clock`` is a monotonic seconds clock; ``sleep`` waits (both default to ``time``).
    """

    def __init__(self, capacity: float = DEFAULT_CAPACITY, refill_per_s: float = DEFAULT_REFILL_PER_S,
                 cost: float = DEFAULT_COST, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if capacity <= 0 or refill_per_s <= 0 or not 0 < cost <= capacity:
            raise ValueError("need capacity > 0, refill_per_s > 0 and 0 < cost <= capacity")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self.cost = float(cost)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._credits = float(capacity)
        self._stamp = clock()
        self._paused_until = 0.0
        self.waited_s = 0.0     # total time callers spent blocked (for status/metrics)
        self.drained = 0        # how many times drain() was called

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._credits = min(self.capacity, self._credits + (now - self._stamp) * self.refill_per_s)
            self._stamp = now

    @property
    def credits(self) -> float:
        with self._lock:
            self._refill(self._clock())
            return self._credits

    def try_acquire(self, cost: float | None = None) -> float:
        """Take the credits if available now and return 0.0; else return the seconds to wait (nothing taken)."""
        need = self.cost if cost is None else float(cost)
        if need > self.capacity:
            raise ValueError(f"cost {need} exceeds capacity {self.capacity}")
        with self._lock:
            now = self._clock()
            self._refill(now)
            if now < self._paused_until:
                return self._paused_until - now
            if self._credits + _EPSILON >= need:  # float dust must not cause an endless wait
                self._credits = max(0.0, self._credits - need)
                return 0.0
            return (need - self._credits) / self.refill_per_s

    def drain(self, pause_s: float = 0.0) -> None:
        """After a 10028/429: empty the pool and let nobody through for ``pause_s`` seconds (then the
        pool refills from zero at the normal rate)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._credits = 0.0
            self._paused_until = max(self._paused_until, now + max(0.0, pause_s))
            # credits start refilling only once the pause is over
            self._stamp = max(self._stamp, self._paused_until)
            self.drained += 1


_shared: CreditBucket | None = None
_shared_lock = threading.Lock()


def shared_bucket() -> CreditBucket:
    """The process-wide bucket (default limits), created on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = CreditBucket()
        return _shared
