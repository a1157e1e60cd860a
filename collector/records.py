"""The record types: one per physical table, field order = COPY column order = the SQL column order.

Parsers (``collector.deribit``) build these; the store (``collector.store``) writes them. Units and types
are final here: timestamps are aware UTC datetimes, prices/sizes/greeks are floats or None (never a
made-up 0), names are text. Each type names its target table in ``__table__``; its column list is
``__struct_fields__`` (the writer takes the PostgreSQL types from the table itself).

Records are msgspec Structs (frozen, array-like, no GC tracking): cheap to build on the hot path,
converted to a tuple for COPY by ``msgspec.structs.astuple`` and encoded compactly into the spool.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Union

import msgspec


class Record(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Base of every row type. ``__table__`` is the table it is written to; for a per-currency type
    (``__per_currency__``) it is the table's suffix: the row goes to ``{currency}_{__table__}``
    (e.g. ``eth_option_quotes``), whose columns are the fields without ``currency``."""

    __table__: ClassVar[str] = ""
    __per_currency__: ClassVar[bool] = False


F = Union[float, None]  # double precision, NULL when Deribit sends nothing


class IndexPrice(Record, frozen=True, array_like=True, gc=False):
    __table__: ClassVar[str] = "index_prices"
    timestamp: datetime
    index_name: str
    price: float
    estimated_delivery_price: F = None


class Candle(Record, frozen=True, array_like=True, gc=False):
    """A 1-minute OHLCV bar of a perpetual (``perpetuals_ohlcv``)."""

    __table__: ClassVar[str] = "perpetuals_ohlcv"
    timestamp: datetime
    instrument: str
    currency: str
    open: F
    high: F
    low: F
    close: F
    volume: F
    cost: F


class FutureCandle(Candle, frozen=True, array_like=True, gc=False):
    """A 1-minute OHLCV bar of a dated future (``futures_ohlcv``); same columns as a perpetual's."""

    __table__: ClassVar[str] = "futures_ohlcv"


class OptionBar(Record, frozen=True, array_like=True, gc=False):
    """One row per live option per minute: the book summary, plus real OHLCV where it traded."""

    __table__: ClassVar[str] = "options_ohlcv"
    timestamp: datetime
    instrument: str
    currency: str
    open: F
    high: F
    low: F
    close: F
    volume: F
    bid_price: F
    ask_price: F
    mid_price: F
    mark_price: F
    mark_iv: F
    bid_iv: F
    ask_iv: F
    underlying_price: F
    underlying_index: str | None
    index_price: F
    volume_24h: F
    open_interest: F


class Greeks(Record, frozen=True, array_like=True, gc=False):
    __table__: ClassVar[str] = "options_greeks"
    timestamp: datetime
    instrument: str
    currency: str
    delta: F
    gamma: F
    vega: F
    theta: F
    rho: F
    mark_iv: F
    bid_iv: F
    ask_iv: F
    mark_price: F
    underlying_price: F
    index_price: F
    open_interest: F


class Funding(Record, frozen=True, array_like=True, gc=False):
    __table__: ClassVar[str] = "funding_rates"
    timestamp: datetime
    instrument: str
    currency: str
    interest_1h: F
    interest_8h: F
    index_price: F
    prev_index_price: F


class OptionQuote(Record, frozen=True, array_like=True, gc=False):
    """A change of an option's best bid/ask (from ``ticker.*`` or ``quote.*``), with what the same
    ticker says besides (mark, IVs, greeks, last price); written to ``{cur}_option_quotes``.
    ``implied_volatility`` is the mark IV again, under the name the user's own tables use."""

    __table__: ClassVar[str] = "option_quotes"
    __per_currency__: ClassVar[bool] = True
    timestamp: datetime
    instrument: str
    currency: str
    best_bid_price: F
    best_bid_amount: F
    best_ask_price: F
    best_ask_amount: F
    mark_price: F = None
    mark_iv: F = None
    bid_iv: F = None
    ask_iv: F = None
    underlying_price: F = None
    underlying_index: str | None = None
    index_price: F = None
    open_interest: F = None
    delta: F = None
    gamma: F = None
    vega: F = None
    theta: F = None
    rho: F = None
    last_price: F = None
    volume_24h: F = None
    implied_volatility: F = None


class OptionTrade(Record, frozen=True, array_like=True, gc=False):
    """One option trade, written to ``{cur}_option_trades``. Unique by (instrument, trade_seq)."""

    __table__: ClassVar[str] = "option_trades"
    __per_currency__: ClassVar[bool] = True
    timestamp: datetime
    instrument: str
    currency: str
    trade_seq: int
    trade_id: str
    price: float
    amount: float
    direction: str
    contracts: F = None
    tick_direction: int | None = None
    index_price: F = None
    mark_price: F = None
    iv: F = None
    liquidation: str | None = None
    block_trade_id: str | None = None
    combo_id: str | None = None


class BookDepth(Record, frozen=True, array_like=True, gc=False):
    """A top-N order-book snapshot of a perpetual (``perpetuals_orderbook_depth``)."""

    __table__: ClassVar[str] = "perpetuals_orderbook_depth"
    timestamp: datetime
    instrument: str
    currency: str
    change_id: int | None
    depth: int
    bid_prices: list[float]
    bid_amounts: list[float]
    ask_prices: list[float]
    ask_amounts: list[float]
    best_bid_price: F = None
    best_ask_price: F = None
    mark_price: F = None
    index_price: F = None


class OptionBookDepth(BookDepth, frozen=True, array_like=True, gc=False):
    """A top-N order-book snapshot of an option, written to ``{cur}_option_orderbook_depth``."""

    __table__: ClassVar[str] = "option_orderbook_depth"
    __per_currency__: ClassVar[bool] = True


class PerpetualQuote(Record, frozen=True, array_like=True, gc=False):
    """A change of a perpetual's best bid/ask or their sizes (from its ``ticker.*`` channel), with the
    mark and index prices, the funding and the open interest the same ticker carries; written to
    ``perpetuals_quotes``. ``funding_rate`` is the ticker's ``current_funding``."""

    __table__: ClassVar[str] = "perpetuals_quotes"
    timestamp: datetime
    instrument: str
    best_bid_price: F
    best_bid_amount: F
    best_ask_price: F
    best_ask_amount: F
    mark_price: F = None
    index_price: F = None
    funding_rate: F = None
    funding_8h: F = None
    open_interest: F = None


class PerpetualTrade(Record, frozen=True, array_like=True, gc=False):
    """One trade of a perpetual, written to ``perpetuals_trades``. Unique by (instrument, trade_seq)."""

    __table__: ClassVar[str] = "perpetuals_trades"
    timestamp: datetime
    instrument: str
    trade_seq: int
    trade_id: str
    price: float
    amount: float
    direction: str
    tick_direction: int | None = None
    index_price: F = None
    mark_price: F = None
    liquidation: str | None = None


class DataGap(Record, frozen=True, array_like=True, gc=False):
    """A detected hole. ``timestamp`` is when it was detected; [gap_start, gap_end] is what is missing."""

    __table__: ClassVar[str] = "data_gaps"
    timestamp: datetime
    relation: str
    instrument: str  # '' when the gap covers a whole relation/connection, never NULL
    currency: str
    gap_start: datetime
    gap_end: datetime
    cause: str
    recoverable: bool
    backfilled_at: datetime | None = None
    from_seq: int | None = None
    to_seq: int | None = None
    missing_count: int | None = None
    details: str | None = None


RECORD_TYPES: tuple[type[Record], ...] = (
    IndexPrice, Candle, FutureCandle, OptionBar, Greeks, Funding, OptionQuote, OptionTrade,
    BookDepth, OptionBookDepth, DataGap, PerpetualQuote, PerpetualTrade,
)
BY_TABLE: dict[str, type[Record]] = {t.__table__: t for t in RECORD_TYPES}


def table_name(rtype: type[Record], currency: str | None = None) -> str:
    """The table rows of ``rtype`` go to: ``__table__``, or ``{currency}_{__table__}`` per currency
    (``table_name(OptionTrade, "ETH")`` is ``eth_option_trades``)."""
    if rtype.__per_currency__:
        if not currency:
            raise ValueError(f"{rtype.__name__} is per currency: a currency is needed")
        return f"{currency.lower()}_{rtype.__table__}"
    return rtype.__table__


def table_of(record: Record) -> str:
    """The table a record is written to."""
    rtype = type(record)
    return table_name(rtype, record.currency if rtype.__per_currency__ else None)  # type: ignore[attr-defined]


def columns_of(rtype: type[Record]) -> tuple[str, ...]:
    """The table's columns the record fills, in field order (a per-currency table has no currency)."""
    fields = rtype.__struct_fields__
    return tuple(f for f in fields if f != "currency") if rtype.__per_currency__ else fields
