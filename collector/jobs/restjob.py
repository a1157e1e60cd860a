"""What every REST timer job shares: one pass = fetch with a few threads, store, report, exit code.

A :class:`RestPass` owns, for one run of a job:

* a small thread pool; each thread has its own :class:`RestClient` (a ``requests.Session`` is not
  thread-safe) and all of them take credits from one bucket (by default the host's, shared with the
  other jobs' processes: :func:`collector.ratebudget.budget_for`), so Deribit's credit scheme, not
  network latency, bounds a pass. Each request is charged
  :data:`CREDIT_MARGIN` more than Deribit's price: the server counts a request when it arrives, a little
  after the client did, and a client running at the exact limit gets the odd 10028 from that jitter;
* a :class:`BatchStore` spooling to ``<spool_dir>/<job>`` while the database is away;
* the tally: rows, retries, instruments skipped (expired between listing and fetch) and failures.

A task is a function of a client; :meth:`RestPass.run` runs many and returns the results of those that
worked. A failing task never stops the others: a Deribit error (after the client's retries), a parse
error or a bug is recorded against the task's label, and the pass goes on. Tasks hand their rows to
:meth:`RestPass.add` (thread-safe); the calling thread writes them in batches.

The exit code tells the truth: 0 when everything tried was stored (committed, or safe in the spool), 1
when anything failed for good (after storing what did succeed).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, TypeVar

import psycopg

from collector.config import Settings
from collector.deribit.fields import ParseError
from collector.deribit.ratelimit import CreditBucket
from collector.deribit.rest import DeribitError, InstrumentNotFound, Kind, RestClient
from collector.ratebudget import FileBucket, budget_for
from collector.records import DataGap, Record
from collector.store import db
from collector.store.resume import latest_timestamps
from collector.store.spool import Spool
from collector.store.writer import BatchStore

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
DEFAULT_THREADS = 4
MAX_LOGGED_FAILURES = 5  # the first few failures are logged one by one, the rest counted
CREDIT_MARGIN = 0.05     # charge 5 % over Deribit's price: ~19 requests/s sustained, bursts of ~95

T = TypeVar("T")


@dataclass(frozen=True)
class Gap:
    """What a task's failure leaves missing: a ``data_gaps`` row (``recoverable``: a later run refills it)."""

    relation: str
    start: datetime
    end: datetime
    recoverable: bool


@dataclass(frozen=True)
class Task:
    """``fn(client)`` does one unit of work; ``label`` names it in failures (the instrument, when ``gap``
    is given: its failure is then also recorded in ``data_gaps``)."""

    label: str
    fn: Callable[[RestClient], Any]
    gap: Gap | None = None


class MarginBucket:
    """A :class:`CreditBucket` seen through a safety margin: ``acquire`` takes ``(1 + margin)`` times the
    price, so from a full pool the client builds a cushion of ``margin`` x what it spent before it can
    reach empty, which absorbs the delay between taking credits here and Deribit counting them."""

    def __init__(self, bucket: CreditBucket | FileBucket, margin: float = CREDIT_MARGIN) -> None:
        self.bucket = bucket
        self.margin = margin

    def acquire(self, cost: float | None = None) -> float:
        price = self.bucket.cost if cost is None else float(cost)
        return self.bucket.acquire(min(self.bucket.capacity, price * (1.0 + self.margin)))

    def drain(self, pause_s: float = 0.0) -> None:
        self.bucket.drain(pause_s)


@dataclass
class Outcome:
    """What one pass did; ``exit_code`` is what the process returns."""

    job: str
    started_at: datetime
    finished_at: datetime | None = None
    wall_s: float = 0.0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0       # answers 10028 / 10066 / HTTP 429
    rows_inserted: int = 0
    rows_duplicate: int = 0
    rows_spooled: int = 0
    rows_rejected: int = 0
    rows_dropped: int = 0
    skipped: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)   # label -> error

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if (self.failures or self.rows_rejected or self.rows_dropped) else EXIT_OK

    def details(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall_s, 3), "requests": self.requests, "retries": self.retries,
                "rate_limited": self.rate_limited,
                "rows_inserted": self.rows_inserted, "rows_duplicate": self.rows_duplicate,
                "rows_spooled": self.rows_spooled, "rows_rejected": self.rows_rejected,
                "skipped": len(self.skipped), "failed": len(self.failures),
                "failures": dict(list(self.failures.items())[:20])}


def exchange_ms(value: Any) -> int:
    """``public/get_time`` result -> ms; a ParseError when it is not an integer."""
    if type(value) is not int:
        raise ParseError(f"get_time: expected an integer, got {type(value).__name__}")
    return value


class RestPass:
    """One pass of a REST job. Use as a context manager; :meth:`finish` (called on exit) returns the
    :class:`Outcome` and reports it in ``collector_status``."""

    def __init__(self, settings: Settings, job: str, *, threads: int = DEFAULT_THREADS,
                 bucket: CreditBucket | FileBucket | None = None, client_kw: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.job = job
        self.bucket = bucket if bucket is not None else budget_for(settings)
        self._client_kw = dict(client_kw or {})
        self.store = BatchStore(settings.require_database_url(),
                                Spool(settings.spool_dir / job, settings.spool_max_bytes))
        self.outcome = Outcome(job, datetime.now(timezone.utc))
        self._t0 = time.monotonic()
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix=f"{job}-rest")
        self._local = threading.local()
        self._clients: list[RestClient] = []
        self._lock = threading.Lock()
        self._buffer: list[Record] = []
        self._logged = 0
        self._finished = False

    # -- clients and tasks ------------------------------------------------------------------------

    def client(self) -> RestClient:
        """This thread's client (created on first use; all share the pass's credit bucket)."""
        c = getattr(self._local, "client", None)
        if c is None:
            c = RestClient.from_settings(self.settings, limiter=MarginBucket(self.bucket), **self._client_kw)
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def run(self, tasks: Iterable[Task]) -> dict[str, Any]:
        """Run the tasks on the pool; ``{label: result}`` of those that worked (failures are recorded)."""
        futures = {self._pool.submit(self._guarded, t): t for t in tasks}
        results: dict[str, Any] = {}
        for fut in as_completed(futures):
            ok, value = fut.result()
            if ok:
                results[futures[fut].label] = value
            if len(self._buffer) >= self.settings.batch_rows:
                self.flush()
        return results

    def one(self, label: str, fn: Callable[[RestClient], T]) -> tuple[bool, T | None]:
        """Run one task in the calling thread: ``(True, result)`` or ``(False, None)`` (recorded)."""
        return self._guarded(Task(label, fn))

    def _guarded(self, task: Task) -> tuple[bool, Any]:
        try:
            return True, task.fn(self.client())
        except InstrumentNotFound:
            # listed a moment ago, gone now: it expired between listing and fetch
            with self._lock:
                self.outcome.skipped.append(task.label)
            log.debug("instrument_gone", extra={"job": self.job, "task": task.label})
        except (DeribitError, ParseError) as exc:
            self.fail(task.label, exc, task.gap)
        except Exception as exc:  # noqa: BLE001 - a bug in one task must not cost the others
            log.exception("task_crashed", extra={"job": self.job, "task": task.label})
            self.fail(task.label, exc, task.gap)
        return False, None

    def fail(self, label: str, exc: BaseException | str, gap: Gap | None = None) -> None:
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"[:300]
        if gap is not None:
            self.add([DataGap(datetime.now(timezone.utc), gap.relation, label, label.split("-")[0],
                              gap.start, gap.end, "rest_error", gap.recoverable, details=text)])
        with self._lock:
            self.outcome.failures[label] = text
            self._logged += 1
            logged = self._logged
        if logged <= MAX_LOGGED_FAILURES:
            log.warning("task_failed", extra={"job": self.job, "task": label, "error": text})

    def skip(self, label: str) -> None:
        with self._lock:
            self.outcome.skipped.append(label)

    # -- rows -------------------------------------------------------------------------------------

    def add(self, records: Iterable[Record]) -> None:
        """Queue rows for the next write (any thread)."""
        with self._lock:
            self._buffer.extend(records)

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        res = self.store.write(batch)
        o = self.outcome
        o.rows_inserted += res.inserted
        o.rows_duplicate += res.duplicates
        o.rows_spooled += res.spooled
        o.rows_rejected += res.rejected
        o.rows_dropped += len(res.overflow)
        if res.overflow:
            log.error("rows_dropped", extra={"job": self.job, "rows": len(res.overflow), "reason": "spool full"})

    def stored_until(self, groups: Iterable[tuple[type[Record], list[str]]]) -> dict[str, datetime] | None:
        """Newest stored timestamp per instrument (for resuming), after committing what earlier passes
        spooled; None while the database cannot be reached (the caller then fetches a short lookback)."""
        try:
            self.store.replay()
            dsn = self.settings.require_database_url()
            out: dict[str, datetime] = {}
            for rtype, names in groups:
                out.update(latest_timestamps(dsn, rtype, names))
            return out
        except psycopg.Error as err:
            if not db.is_connection_error(err):
                raise
            log.warning("resume_points_unavailable", extra={"job": self.job, "error": str(err).strip()[:200]})
            return None

    # -- the end ----------------------------------------------------------------------------------

    def finish(self) -> Outcome:
        if self._finished:
            return self.outcome
        self._finished = True
        o = self.outcome
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)
            for c in self._clients:
                o.requests += c.requests
                o.retries += c.retries
                o.rate_limited += c.rate_limited
                c.close()
            o.finished_at = datetime.now(timezone.utc)
            o.wall_s = time.monotonic() - self._t0
            state = "ok" if o.exit_code == EXIT_OK else "failed"
            self.store.report_status(self.job, state, started_at=o.started_at, last_message_at=o.finished_at,
                                     rows_dropped=o.rows_dropped, rate_limited=o.rate_limited,
                                     details=o.details())
            self.store.close()
        level = logging.INFO if o.exit_code == EXIT_OK else logging.WARNING
        log.log(level, "job_done", extra={"job": self.job, "exit_code": o.exit_code, **o.details()})
        return o

    def __enter__(self) -> "RestPass":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None:
            self.fail("pass", exc)
        self.finish()


def book_summaries(client: RestClient, currency: str, kind: Kind) -> list[dict]:
    """The live instruments of one kind, with their summaries (one request for the whole chain)."""
    result = client.get_book_summary_by_currency(currency, kind)
    if type(result) is not list or any(type(s) is not dict or type(s.get("instrument_name")) is not str
                                       for s in result):
        raise ParseError("book summaries: expected an array of objects with instrument_name")
    return result
