"""Health: the user's relations with their row counts and freshness, and the collector_status rows."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

import psycopg
from psycopg import sql

from collector.store import db

COMMON_RELATIONS = (
    "index_prices", "perpetuals_ohlcv", "futures_ohlcv", "options_ohlcv", "options_greeks",
    "funding_rates", "perpetuals_orderbook_depth", "perpetuals_quotes", "perpetuals_trades",
)
PER_CURRENCY = ("option_quotes", "option_trades", "option_orderbook_depth")
EXACT_COUNT_BELOW = 1_000_000  # below the planner's estimate, count(*) is cheap enough to be exact


def relations_for(currencies: Iterable[str]) -> list[str]:
    """The user's time-series relations for these (validated) currencies, in display order."""
    out = list(COMMON_RELATIONS)
    for cur in currencies:
        out.extend(f"{cur.lower()}_{name}" for name in PER_CURRENCY)
    return out


@dataclass(frozen=True)
class RelationStatus:
    relation: str
    rows: int | None          # None: the relation does not exist
    rows_exact: bool
    latest: datetime | None
    age: timedelta | None

    def as_json(self) -> dict[str, Any]:
        return {"relation": self.relation, "rows": self.rows, "rows_exact": self.rows_exact,
                "latest": self.latest.isoformat() if self.latest else None,
                "age_s": round(self.age.total_seconds(), 3) if self.age is not None else None}


def relation_status(conn: psycopg.Connection, relation: str, exact: bool = False) -> RelationStatus:
    exists = db.one(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)))[0]
    if not exists:
        return RelationStatus(relation, None, True, None, None)
    ident = sql.Identifier(relation)
    latest, now = db.one(conn.execute(sql.SQL("SELECT max(timestamp), now() FROM {}").format(ident)))
    if latest is None:
        return RelationStatus(relation, 0, True, None, None)
    rows, is_exact = None, exact
    if not exact:
        plan = db.one(conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {}").format(ident)))[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        rows = int(plan[0]["Plan"]["Plan Rows"])
        is_exact = rows < EXACT_COUNT_BELOW
    if is_exact:
        rows = db.one(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)))[0]
    return RelationStatus(relation, rows, is_exact, latest, now - latest)


def gaps_summary(conn: psycopg.Connection, since: timedelta = timedelta(days=1)) -> list[dict[str, Any]]:
    """data_gaps of the last ``since`` by relation and cause."""
    cur = conn.execute(
        "SELECT relation, cause, recoverable, count(*), count(backfilled_at), max(gap_end) "
        "FROM data_gaps WHERE timestamp > now() - %s GROUP BY 1, 2, 3 ORDER BY 1, 2", (since,))
    return [{"relation": r, "cause": c, "recoverable": rec, "gaps": n, "backfilled": b,
             "latest_gap_end": last.isoformat() if last else None} for r, c, rec, n, b, last in cur]


def jobs(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.execute("SELECT job, state, timestamp, rows_written, rows_spooled, rows_dropped, errors, "
                       "now() - timestamp FROM collector_status ORDER BY job")
    return [{"job": j, "state": s, "updated": t.isoformat(), "rows_written": w, "rows_spooled": sp,
             "rows_dropped": d, "errors": e, "age_s": round(age.total_seconds(), 1)}
            for j, s, t, w, sp, d, e, age in cur]


_UPSERT = """
INSERT INTO collector_status AS s (job, timestamp, state, host, pid, started_at, last_message_at, last_write_at,
    rows_written, rows_spooled, rows_dropped, errors, queue_rows, spool_bytes, rate_limited, details)
VALUES (%(job)s, now(), %(state)s, %(host)s, %(pid)s, %(started_at)s, %(last_message_at)s, %(last_write_at)s,
    %(rows_written)s, %(rows_spooled)s, %(rows_dropped)s, %(errors)s, %(queue_rows)s, %(spool_bytes)s,
    %(rate_limited)s, %(details)s)
ON CONFLICT (job) DO UPDATE SET timestamp = now(), state = EXCLUDED.state, host = EXCLUDED.host, pid = EXCLUDED.pid,
    started_at = EXCLUDED.started_at, last_message_at = EXCLUDED.last_message_at,
    last_write_at = EXCLUDED.last_write_at, rows_written = EXCLUDED.rows_written,
    rows_spooled = EXCLUDED.rows_spooled, rows_dropped = EXCLUDED.rows_dropped, errors = EXCLUDED.errors,
    queue_rows = EXCLUDED.queue_rows, spool_bytes = EXCLUDED.spool_bytes, rate_limited = EXCLUDED.rate_limited,
    details = EXCLUDED.details
"""


def upsert_job(conn: psycopg.Connection, job: str, state: str, *, started_at: datetime | None = None,
               last_message_at: datetime | None = None, last_write_at: datetime | None = None,
               rows_written: int = 0, rows_spooled: int = 0, rows_dropped: int = 0, errors: int = 0,
               queue_rows: int = 0, spool_bytes: int = 0, rate_limited: int = 0,
               details: dict[str, Any] | None = None) -> None:
    """One row per job, replaced on every heartbeat (autocommit connection expected); ``rate_limited``:
    the job's rate-limit answers from Deribit (10028 / 10066 / HTTP 429)."""
    conn.execute(_UPSERT, {
        "job": job, "state": state, "host": socket.gethostname(), "pid": os.getpid(),
        "started_at": started_at, "last_message_at": last_message_at, "last_write_at": last_write_at,
        "rows_written": rows_written, "rows_spooled": rows_spooled, "rows_dropped": rows_dropped,
        "errors": errors, "queue_rows": queue_rows, "spool_bytes": spool_bytes, "rate_limited": rate_limited,
        "details": json.dumps(details) if details is not None else None,
    })
