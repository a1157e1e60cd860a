"""PostgreSQL connections and the one decision of what a database error means."""

from __future__ import annotations

import socket
from typing import Any

import psycopg

APPLICATION_NAME = "deribit-collector"


def one(cur: psycopg.Cursor) -> tuple[Any, ...]:
    """The row of a query that always returns one (an aggregate, EXISTS, a function call)."""
    row = cur.fetchone()
    assert row is not None
    return row


def connect(dsn: str, *, autocommit: bool = False, connect_timeout: int = 5,
            application: str = APPLICATION_NAME) -> psycopg.Connection:
    """A connection with a connect timeout and TCP keepalives, so a dead server is noticed."""
    return psycopg.connect(
        dsn,
        autocommit=autocommit,
        connect_timeout=connect_timeout,
        application_name=f"{application}@{socket.gethostname()}"[:63],
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )


def is_connection_error(err: BaseException) -> bool:
    """True when the database went away or cannot be reached (retry later, spool meanwhile);
    False when the data or the SQL is at fault (retrying the same rows would fail again)."""
    if isinstance(err, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True
    # the server is shutting down or starting: it comes back, the rows are fine
    sqlstate = getattr(err, "sqlstate", None) or ""
    return sqlstate.startswith(("08", "57P"))
