"""What the legacy database holds: its tables and columns (``information_schema.columns``: any subset
may exist), which of them the import knows, and a cheap row estimate for each."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from collector.errors import CollectorError
from collector.legacy.mapping import FIXED, KINDS, PER_CURRENCY, Kind, Source, missing_required
from collector.store import db

# Theirs, with another meaning than ours: never imported as ours.
BOOKKEEPING = ("data_gaps", "collector_status", "instrument_metadata", "lifecycle_events")
_PER_CURRENCY = re.compile(r"^([a-z0-9]{1,16})_(option_quotes|option_trades|option_orderbook_depth)$")


class LegacyError(CollectorError, RuntimeError):
    """The source cannot be imported (not the old collector's database, or ours not ready)."""


@dataclass(frozen=True)
class Table:
    """One source table the import knows."""

    source: Source
    kind: Kind
    currency: str | None      # per-currency tables: 'ETH' from eth_option_quotes
    target: str
    missing: list[str]        # required columns the source lacks (then it is not imported)

    @property
    def name(self) -> str:
        return self.source.name


@dataclass
class Catalog:
    tables: list[Table] = field(default_factory=list)
    bookkeeping: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    timescaledb: bool = False


def read(conn: psycopg.Connection) -> Catalog:
    """The source's tables in import order: per currency (quotes, trades, depth), then the rest."""
    if db.one(conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL "
                           "AND to_regclass('collector_currencies') IS NOT NULL"))[0]:
        raise LegacyError("the source is a database of this collector (it has schema_migrations and "
                          "collector_currencies), not the Docker collector's: nothing to import")
    cols: dict[str, dict[str, str]] = {}
    for table, column, dtype in conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position"):
        cols.setdefault(table, {})[column] = dtype
    cat = Catalog(timescaledb=db.one(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"))[0])
    per_currency: list[Table] = []
    fixed: list[Table] = []
    order = {k: i for i, k in enumerate(PER_CURRENCY)}
    for name, columns in cols.items():
        src = Source(name, columns)
        m = _PER_CURRENCY.match(name)
        if m:
            kind = KINDS[PER_CURRENCY[m.group(2)]]
            cur = m.group(1).upper()
            per_currency.append(Table(src, kind, cur, kind.target_for(cur), missing_required(kind, src)))
        elif name in FIXED:
            kind = KINDS[FIXED[name]]
            fixed.append(Table(src, kind, None, kind.target, missing_required(kind, src)))
        elif name in BOOKKEEPING:
            cat.bookkeeping.append(name)
        else:
            cat.unknown.append(name)
    per_currency.sort(key=lambda t: (t.currency or "", order[t.name.split("_", 1)[1]]))
    fixed_order = list(FIXED)
    fixed.sort(key=lambda t: fixed_order.index(t.name))
    cat.tables = per_currency + fixed
    return cat


def estimate(conn: psycopg.Connection, table: str, timescaledb: bool) -> int | None:
    """The planner's row count (TimescaleDB: ``approximate_row_count``, chunks included), None when the
    table was never analysed."""
    if timescaledb:
        try:
            with conn.transaction():
                n = db.one(conn.execute("SELECT approximate_row_count(%s::regclass)", (table,)))[0]
            if n and n > 0:
                return int(n)
        except psycopg.Error:
            pass
    n = db.one(conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)))[0]
    return int(n) if n is not None and n >= 0 else None


def exact(conn: psycopg.Connection, table: str, where: sql.Composable) -> int:
    """``count(*)`` of the rows ``where`` (an engine.where clause over ``t``) selects."""
    q = sql.SQL("SELECT count(*) FROM {} AS t{}").format(sql.Identifier(table), where)
    return db.one(conn.execute(q))[0]
