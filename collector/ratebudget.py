"""One Deribit credit budget per host: a token bucket in a small file, shared by every process.

The timer jobs (``rest``, ``depth``, ``greeks``, ``funding``) and the streams' backfills run as separate
processes, often in the same minute. Each with a pool of its own, together they would draw several
times Deribit's budget (API.md §8: 500 credits a request, 50,000 at most, 10,000 a second back) and get
10028 storms. :class:`FileBucket` keeps the pool in a file of the runtime directory instead, read and
written under ``fcntl.flock`` (plus a thread lock: ``flock`` does not exclude threads sharing one
descriptor), so the processes of a host take from one pool -- and a 10028 drains it for all of them.

The file holds three doubles: the credits, when they were counted and the end of a drain's pause, in
``CLOCK_MONOTONIC`` seconds, which every process of a host shares. A file from an earlier boot (its
times ahead of the clock), a short or foreign file, or one that cannot be read is started again, full.
One file per REST endpoint (``deribit-credits-<host>_<port>``): testnet, production and a simulator each
have a budget of their own.

:func:`budget_for` picks the bucket of a :class:`~collector.config.Settings`: the file under
``COLLECTOR_RUNTIME_DIR`` (default ``$RUNTIME_DIRECTORY``, else ``/run/collector``; a per-user
directory under the system's temp dir when that is not writable), or the process-wide in-memory bucket
when ``DERIBIT_SHARED_BUDGET=no``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from collector.deribit.ratelimit import (
    Blocking, DEFAULT_CAPACITY, DEFAULT_COST, DEFAULT_REFILL_PER_S, CreditBucket, shared_bucket,
)

__all__ = ["FileBucket", "budget_for", "budget_path", "writable_dir"]

log = logging.getLogger(__name__)

_MAGIC = b"DCB1"
_FORMAT = "<4sddd"               # magic, credits, stamp, paused_until
_SIZE = struct.calcsize(_FORMAT)
_EPSILON = 1e-6
_MAX_AHEAD_S = 60.0            # the longest pause a drain may set


class FileBucket(Blocking):
    """A :class:`~collector.deribit.ratelimit.CreditBucket` whose state lives in ``path``, shared by every
    process (and thread) that opens the same file. Same interface: ``acquire``, ``try_acquire``,
    ``drain``, ``credits``, ``capacity``, ``cost``; ``clock`` must be one all processes share."""

    def __init__(self, path: Path | str, capacity: float = DEFAULT_CAPACITY,
                 refill_per_s: float = DEFAULT_REFILL_PER_S, cost: float = DEFAULT_COST, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if capacity <= 0 or refill_per_s <= 0 or not 0 < cost <= capacity:
            raise ValueError("need capacity > 0, refill_per_s > 0 and 0 < cost <= capacity")
        self.path = Path(path)
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self.cost = float(cost)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        self.waited_s = 0.0     # what this process's callers spent blocked
        self.drained = 0        # how many times this process drained the pool

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    # -- the locked read-modify-write ---------------------------------------------------------------

    def _update(self, fn: Callable[[float, float, float, float], tuple[float, float, float, Any]]) -> Any:
        """``fn(now, credits, stamp, paused_until) -> (credits, stamp, paused_until, result)`` under both locks."""
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"credit budget {self.path} is closed")
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now = self._clock()
                credits, stamp, paused = self._read(now)
                if now > stamp:
                    credits = min(self.capacity, credits + (now - stamp) * self.refill_per_s)
                    stamp = now
                credits, stamp, paused, result = fn(now, credits, stamp, paused)
                os.pwrite(self._fd, struct.pack(_FORMAT, _MAGIC, credits, stamp, paused), 0)
                return result
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _read(self, now: float) -> tuple[float, float, float]:
        raw = os.pread(self._fd, _SIZE, 0)
        if len(raw) == _SIZE:
            magic, credits, stamp, paused = struct.unpack(_FORMAT, raw)
            # a file of an earlier boot may have times ahead of this clock: start again (no drain
            # pauses anyone for longer than _MAX_AHEAD_S)
            sane = (magic == _MAGIC and 0.0 <= credits <= self.capacity
                    and stamp <= now + _MAX_AHEAD_S and paused <= now + _MAX_AHEAD_S)
            if sane:
                return credits, stamp, paused
        return self.capacity, now, 0.0

    # -- the CreditBucket interface -------------------------------------------------------------------

    @property
    def credits(self) -> float:
        return self._update(lambda now, c, s, p: (c, s, p, c))

    def try_acquire(self, cost: float | None = None) -> float:
        """Take the credits if available now and return 0.0; else the seconds to wait (nothing taken)."""
        need = self.cost if cost is None else float(cost)
        if need > self.capacity:
            raise ValueError(f"cost {need} exceeds capacity {self.capacity}")

        def take(now: float, c: float, s: float, p: float) -> tuple[float, float, float, float]:
            if now < p:
                return c, s, p, p - now
            if c + _EPSILON >= need:
                return max(0.0, c - need), s, p, 0.0
            return c, s, p, (need - c) / self.refill_per_s

        return self._update(take)

    def drain(self, pause_s: float = 0.0) -> None:
        """After a 10028/429: empty the pool of every process and let nobody through for ``pause_s``."""
        def empty(now: float, c: float, s: float, p: float) -> tuple[float, float, float, None]:
            paused = max(p, now + min(_MAX_AHEAD_S, max(0.0, pause_s)))
            return 0.0, max(s, paused), paused, None

        self._update(empty)
        with self._lock:
            self.drained += 1


# -- which bucket a job uses --------------------------------------------------------------------------

_buckets: dict[Path, FileBucket] = {}
_buckets_lock = threading.Lock()


def writable_dir(preferred: Path) -> Path:
    """``preferred`` when it is (or can be made) a writable directory, else a per-user directory under the
    system's temp dir (``collector-<uid>``, mode 0700)."""
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK | os.X_OK):
            return preferred
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"collector-{os.getuid()}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    return fallback


def budget_path(runtime_dir: Path, rest_url: str) -> Path:
    """The budget file of one REST endpoint in ``runtime_dir`` (the directory must already be chosen)."""
    parts = urllib.parse.urlsplit(rest_url)
    where = parts.hostname or "deribit"
    if parts.port:
        where += f"_{parts.port}"
    return runtime_dir / ("deribit-credits-" + re.sub(r"[^A-Za-z0-9._-]", "_", where))


def budget_for(settings: Any) -> "FileBucket | CreditBucket":
    """The credit budget of this host for ``settings.rest_url`` (one object per file and process), or the
    process's own in-memory bucket when sharing is off."""
    if not settings.shared_credit_budget:
        return shared_bucket()
    path = budget_path(writable_dir(Path(settings.runtime_dir)), settings.rest_url)
    with _buckets_lock:
        bucket = _buckets.get(path)
        if bucket is None:
            try:
                bucket = _buckets[path] = FileBucket(path)
            except OSError as err:
                log.warning("credit_budget_unshared", extra={"path": str(path), "error": str(err)[:200],
                                                             "action": "this process keeps a budget of its own"})
                return shared_bucket()
        return bucket
