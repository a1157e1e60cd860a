"""Where a catch-up job resumes: the newest stored timestamp of each instrument in a table.

One index probe per instrument (``max(timestamp)`` on the table's ``(instrument, timestamp)`` key, read
backwards), so the cost does not grow with the table. The table name comes from a record type, never
from configuration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from psycopg import sql

from collector.deribit import instruments
from collector.records import OptionQuote, OptionTrade, PerpetualTrade, Record, table_name
from collector.store import db

_LATEST = "SELECT i, (SELECT max(timestamp) FROM {} WHERE instrument = i) FROM unnest(%s::text[]) AS i"


def latest_timestamps(dsn: str, rtype: type[Record], instruments: Sequence[str]) -> dict[str, datetime]:
    """``{instrument: newest timestamp}`` in ``rtype``'s table for those that have rows.

    Raises ``psycopg.Error`` (e.g. OperationalError while the database is down); the caller decides.
    """
    if not instruments:
        return {}
    query = sql.SQL(_LATEST).format(sql.Identifier(rtype.__table__))
    with db.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(query, (list(instruments),)).fetchall()
    return {name: ts for name, ts in rows if ts is not None}


def stream_baselines(dsn: str, currency: str, horizon_s: float) -> tuple[dict[str, int], datetime | None, datetime | None]:
    """Where a currency's stream resumes: ``({instrument: last trade_seq}`` within ``horizon_s``,
    newest stored trade time, newest stored quote time``)``; the seqs include the currency's perpetual
    (``perpetuals_trades``), the times are the options'. Imported legacy trades (``trade_seq`` < 0, made
    from their trade_id: collector.legacy.mapping) are no baseline. Raises ``psycopg.Error``."""
    trades = sql.Identifier(table_name(OptionTrade, currency))
    quotes = sql.Identifier(table_name(OptionQuote, currency))
    with db.connect(dsn, autocommit=True) as conn:
        seqs: dict[str, int] = dict(conn.execute(sql.SQL(
            "SELECT instrument, max(trade_seq) FROM {} WHERE trade_seq >= 0 "
            "AND timestamp > now() - make_interval(secs => %s) GROUP BY instrument").format(trades), (horizon_s,)).fetchall())
        seqs.update(conn.execute(sql.SQL(
            "SELECT instrument, max(trade_seq) FROM {} WHERE instrument = %s AND trade_seq >= 0 "
            "AND timestamp > now() - make_interval(secs => %s) GROUP BY instrument").format(
                sql.Identifier(PerpetualTrade.__table__)), (instruments.currency(currency).perpetual, horizon_s)).fetchall())
        last_trade = db.one(conn.execute(sql.SQL("SELECT max(timestamp) FROM {}").format(trades)))[0]
        last_quote = db.one(conn.execute(sql.SQL("SELECT max(timestamp) FROM {}").format(quotes)))[0]
    return seqs, last_trade, last_quote
