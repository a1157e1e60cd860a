"""Rows for the health tests: any relation, any timestamps, with a value for every NOT NULL column."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Iterable

import psycopg
from psycopg import sql

_seq = itertools.count(1)
_VALUES = {"text": "X", "bigint": 1, "integer": 1, "smallint": 1, "double precision": 1.0, "boolean": False,
           "ARRAY": [1.0], "jsonb": "{}", "numeric": 1}


def _required(conn: psycopg.Connection, relation: str) -> list[tuple[str, str]]:
    return [(c, t) for c, t in conn.execute(
        "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s AND is_nullable = 'NO' AND column_default IS NULL ORDER BY ordinal_position",
        (relation,))]


def insert(conn: psycopg.Connection, relation: str, stamps: Iterable[datetime | str]) -> int:
    """One row per timestamp (a datetime, or SQL text such as ``now() - interval '10 s'``)."""
    cols = _required(conn, relation)
    assert cols, relation
    n = 0
    for ts in stamps:
        values: list[sql.Composable] = []
        for col, typ in cols:
            if col == "timestamp":
                values.append(sql.SQL(ts) if isinstance(ts, str) else sql.Literal(ts))
            elif col in ("trade_seq", "change_id"):
                values.append(sql.Literal(next(_seq)))
            elif col == "trade_id":
                values.append(sql.Literal(f"T-{next(_seq)}"))
            elif typ == "ARRAY":
                values.append(sql.SQL("ARRAY[1.0]::double precision[]"))
            else:
                values.append(sql.Literal(_VALUES.get(typ, "X")))
        conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
            sql.Identifier(relation), sql.SQL(", ").join(sql.Identifier(c) for c, _ in cols),
            sql.SQL(", ").join(values)))
        n += 1
    return n
