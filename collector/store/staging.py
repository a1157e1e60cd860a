"""The writer's per-table statements: which table a record goes to, and its staging table.

A batch is grouped by target (:func:`group`): the record type and, for a per-currency type, the
currency (``eth_option_quotes``…). For each target table, :func:`stage_table` learns the column types
for binary COPY and creates a temporary staging table once per connection (outside any transaction, so
a rolled-back batch never takes it away); :meth:`StageTable.merge_rows` COPYs rows into it and merges
them with ``INSERT … ON CONFLICT DO NOTHING`` (returns the rows that were new).
"""

from __future__ import annotations

import operator
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import msgspec
import psycopg
from psycopg import sql

from collector.errors import CollectorError
from collector import records
from collector.records import Record, columns_of

_astuple = msgspec.structs.astuple

# A batch grouped by target: (record type, currency for a per-currency type else None) -> rows
Groups = dict[tuple[type[Record], str | None], list[Record]]


class SchemaMismatch(CollectorError, RuntimeError):
    """The database lacks a table or column the records need: run `collector db migrate`."""


def group(records: Iterable[Record]) -> Groups:
    groups: Groups = defaultdict(list)
    for r in records:
        rtype = type(r)
        groups[(rtype, r.currency if rtype.__per_currency__ else None)].append(r)  # type: ignore[attr-defined]
    return groups


def table_name(key: tuple[type[Record], str | None]) -> str:
    return records.table_name(*key)


@dataclass(frozen=True)
class StageTable:
    name: str
    columns: tuple[str, ...]
    pg_types: list[str]
    copy: sql.Composed
    merge: sql.Composed
    project: Callable[[tuple], tuple] | None = None  # record tuple -> row (drops currency per currency)

    def merge_rows(self, cur: psycopg.Cursor, rows: Sequence[Record]) -> int:
        """COPY ``rows`` into the staging table and merge them; the number of new rows."""
        with cur.copy(self.copy) as copy:
            copy.set_types(self.pg_types)
            write_row = copy.write_row
            project = self.project
            if project is None:
                for r in rows:
                    write_row(_astuple(r))
            else:
                for r in rows:
                    write_row(project(_astuple(r)))
        cur.execute(self.merge)
        return cur.rowcount


def stage_table(conn: psycopg.Connection, rtype: type[Record], name: str) -> StageTable:
    """Check ``name`` has the record's columns; create its staging table on this connection."""
    cols = columns_of(rtype)
    found: dict[str, str] = dict(conn.execute(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped", (name,)).fetchall())
    missing = [c for c in cols if c not in found]
    if missing:
        hint = (f" (COLLECTOR_CURRENCIES must include {name.split('_', 1)[0].upper()})"
                if rtype.__per_currency__ else "")
        raise SchemaMismatch(f"table {name} lacks columns {missing} (or does not exist): "
                             f"run `collector db migrate`{hint}")
    stage = sql.Identifier(f"_stage_{name}")
    target = sql.Identifier(name)
    collist = sql.SQL(", ").join(map(sql.Identifier, cols))
    project = None
    if rtype.__per_currency__:
        fields = rtype.__struct_fields__
        project = operator.itemgetter(*[fields.index(c) for c in cols])
    conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                 .format(stage, target))
    return StageTable(name, cols, [found[c] for c in cols],
                      sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, collist),
                      sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING")
                      .format(target, collist, collist, stage), project)
