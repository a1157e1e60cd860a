"""Each legacy table kind -> our table: the SQL expression of every target column over the source's
columns (whichever of them exist), and the reasons a row is rejected.

The expressions run on the source (in ``COPY (SELECT …) TO STDOUT (FORMAT BINARY)``), each cast to the
target column's exact type, so the rows pass through to our staging table without being decoded in
Python. A source column that does not exist reads as NULL; a table that lacks a column a row cannot do
without (``Kind.required``) is not imported (the report says which column). Decisions (README, "Moving
from the Docker setup"):

* NUMERIC/DECIMAL -> double precision (``::float8``, nearest double).
* ``options_ohlcv``: their REST writer filled open=high=low=close with the mark price and wrote missing
  values as 0. A bar with O=H=L=C goes to ``mark_price`` (open..close NULL: ours are real trade bars);
  0 in open/high/low/close/volume/implied_volatility is NULL.
* Trades have no ``trade_seq``: it is minus the number in ``trade_id`` (``ETH-2696055`` -> -2696055),
  deterministic and never a live sequence (those are positive; the stream's baselines ignore < 0).
* Depth JSON ``[[price, amount], …]`` -> our level arrays (best first), ``depth`` = the longer side,
  best bid/ask = the first level.
* ``index_prices.currency`` 'BTC' -> ``index_name`` 'btc_usd'; ``funding_rates.funding_rate`` ->
  ``interest_8h``; a ``liquidation`` boolean true -> 'true' (their table did not say which side).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from psycopg import sql

# source column names -> expression over them
Expr = Callable[["Source"], sql.Composable]

NULL = sql.SQL("NULL")


@dataclass(frozen=True)
class Source:
    """A source table as the catalog found it: its name and columns (name -> data_type)."""

    name: str
    columns: dict[str, str]

    def has(self, col: str) -> bool:
        return col in self.columns

    def col(self, col: str) -> sql.Composable:
        return sql.SQL("t.{}").format(sql.Identifier(col)) if col in self.columns else NULL


def same(col: str) -> Expr:
    return lambda s: s.col(col)


def nonzero(col: str) -> Expr:
    """0 means missing: NULL."""
    return lambda s: sql.SQL("NULLIF({}, 0)").format(s.col(col)) if s.has(col) else NULL


def first_of(*cols: str) -> Expr:
    """The first of these columns that is not NULL (their names for one thing across versions)."""
    def build(s: Source) -> sql.Composable:
        present = [s.col(c) for c in cols if s.has(c)]
        if not present:
            return NULL
        return present[0] if len(present) == 1 else sql.SQL("coalesce({})").format(sql.SQL(", ").join(present))
    return build


def const(text: str) -> Expr:
    return lambda s: sql.SQL(text)


CURRENCY = const("upper(split_part(split_part(t.\"instrument\"::text, '-', 1), '_', 1))")
_DIGITS = "regexp_replace(t.\"trade_id\"::text, '[^0-9]', '', 'g')"
TRADE_SEQ = const(f"CASE WHEN {_DIGITS} ~ '^[0-9]{{1,18}}$' THEN -({_DIGITS})::bigint END")
TRADE_ID_BAD = f"t.trade_id IS NOT NULL AND ({_DIGITS} !~ '^[0-9]{{1,18}}$' OR ({_DIGITS})::numeric = 0)"


def liquidation(s: Source) -> sql.Composable:
    if not s.has("liquidation"):
        return NULL
    if s.columns["liquidation"] == "boolean":
        return sql.SQL("CASE WHEN {} THEN 'true' END").format(s.col("liquidation"))
    return s.col("liquidation")


def ohlc(col: str) -> Expr:
    """A real bar's value (0 = missing); NULL where O=H=L=C (their mark-price fill)."""
    def build(s: Source) -> sql.Composable:
        if not s.has(col):
            return NULL
        return sql.SQL("CASE WHEN {} THEN NULL ELSE NULLIF({}, 0) END").format(_flat(s), s.col(col))
    return build


def _flat(s: Source) -> sql.Composable:
    if not all(s.has(c) for c in ("open", "high", "low", "close")):
        return sql.SQL("false")
    return sql.SQL("(t.open = t.high AND t.high = t.low AND t.low = t.close)")


def ohlcv_mark(s: Source) -> sql.Composable:
    if not s.has("close"):
        return NULL
    return sql.SQL("CASE WHEN {} THEN NULLIF(t.close, 0) END").format(_flat(s))


# --- depth: JSON [[price, amount], ...] (or Deribit's ["new", price, amount]) -> level arrays
def _side(side: str, what: str) -> Expr:
    return lambda s: sql.SQL("{}.{}").format(sql.Identifier("_" + side), sql.Identifier(what))


def _depth_levels(s: Source) -> sql.Composable:
    return sql.SQL("greatest(cardinality(_bids.p), cardinality(_asks.p))")


def _depth_best(side: str) -> Expr:
    return lambda s: sql.SQL("{}.p[1]").format(sql.Identifier("_" + side))


def _depth_from(s: Source) -> sql.Composable:
    parts = []
    for side in ("bids", "asks"):
        j = sql.SQL("{}::jsonb").format(s.col(side)) if s.has(side) else sql.SQL("'[]'::jsonb")
        parts.append(sql.SQL(
            " LEFT JOIN LATERAL (SELECT coalesce(array_agg(CASE WHEN jsonb_typeof(e -> -2) = 'number' "
            "THEN (e ->> -2)::float8 END ORDER BY n), '{{}}') AS p, "
            "coalesce(array_agg(CASE WHEN jsonb_typeof(e -> -1) = 'number' THEN (e ->> -1)::float8 END ORDER BY n), "
            "'{{}}') AS a, coalesce(bool_or(jsonb_typeof(e) IS DISTINCT FROM 'array' OR jsonb_array_length(e) < 2 "
            "OR jsonb_typeof(e -> -2) <> 'number' OR jsonb_typeof(e -> -1) <> 'number'), false) "
            "OR (jsonb_typeof({j}) IS NOT NULL AND jsonb_typeof({j}) <> 'array') AS bad "
            "FROM jsonb_array_elements(CASE WHEN jsonb_typeof({j}) = 'array' THEN {j} ELSE '[]'::jsonb END) "
            "WITH ORDINALITY AS x(e, n)) AS {alias} ON true").format(j=j, alias=sql.Identifier("_" + side)))
    return sql.Composed(parts)


@dataclass(frozen=True)
class Kind:
    """How one kind of legacy table becomes ours."""

    name: str
    target: str                      # our table; '{cur}' is replaced by the source's currency prefix
    columns: dict[str, Expr]         # target column -> expression (timestamp first: the batches' position)
    required: tuple[str, ...] = ("timestamp", "instrument")
    rejects: tuple[tuple[str, str], ...] = ()   # (reason, SQL condition over t.*), checked in order
    trade: bool = False              # a trade: skip one whose (instrument, timestamp, trade_id) we have
    from_extra: Expr | None = None   # more FROM (the depth's laterals)
    uses: tuple[str, ...] = field(default=())   # source columns read besides those named by `columns`

    def target_for(self, currency: str | None) -> str:
        return self.target.replace("{cur}", (currency or "").lower())


_BASE_REJECTS = (("no timestamp", "t.timestamp IS NULL"), ("no instrument", "t.instrument IS NULL"))
_TRADE_REJECTS = _BASE_REJECTS + (
    ("no trade_id", "t.trade_id IS NULL"),
    ("trade_id without a number", TRADE_ID_BAD),
    ("no price", "t.price IS NULL"),
    ("no amount", "t.amount IS NULL"),
    ("no direction", "t.direction IS NULL"),
)
_DEPTH_REJECTS = _BASE_REJECTS + (("bids/asks not a JSON array of [price, amount] levels", "_bids.bad OR _asks.bad"),)

_TS = {"timestamp": same("timestamp"), "instrument": same("instrument")}
_BOOK = {c: same(c) for c in ("best_bid_price", "best_bid_amount", "best_ask_price", "best_ask_amount")}
_GREEKS = {c: same(c) for c in ("delta", "gamma", "vega", "theta", "rho")}
_DEPTH = {
    "depth": _depth_levels, "bid_prices": _side("bids", "p"), "bid_amounts": _side("bids", "a"),
    "ask_prices": _side("asks", "p"), "ask_amounts": _side("asks", "a"),
    "best_bid_price": _depth_best("bids"), "best_ask_price": _depth_best("asks"), "mark_price": same("mark_price"),
}
_TRADE = {
    "trade_seq": TRADE_SEQ, "trade_id": same("trade_id"), "price": same("price"), "amount": same("amount"),
    "direction": same("direction"),
}
_OHLCV = {**_TS, "currency": CURRENCY, **{c: same(c) for c in ("open", "high", "low", "close", "volume")}}

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("option_quotes", "{cur}_option_quotes", {
        **_TS, **_BOOK, "mark_price": same("mark_price"), "mark_iv": first_of("mark_iv", "implied_volatility"),
        "bid_iv": same("bid_iv"), "ask_iv": same("ask_iv"), "underlying_price": same("underlying_price"),
        "open_interest": same("open_interest"), **_GREEKS, "last_price": same("last_price"),
        "volume_24h": same("volume_24h"), "implied_volatility": first_of("implied_volatility", "mark_iv"),
    }, rejects=_BASE_REJECTS),
    Kind("option_trades", "{cur}_option_trades", {
        **_TS, **_TRADE, "index_price": same("index_price"), "iv": same("iv"),
    }, required=("timestamp", "instrument", "trade_id", "price", "amount", "direction"),
        rejects=_TRADE_REJECTS, trade=True),
    Kind("option_depth", "{cur}_option_orderbook_depth", {**_TS, **_DEPTH},
         rejects=_DEPTH_REJECTS, from_extra=_depth_from, uses=("bids", "asks")),
    Kind("perpetuals_quotes", "perpetuals_quotes", {
        **_TS, **_BOOK, "mark_price": same("mark_price"), "index_price": same("index_price"),
        "funding_rate": first_of("funding_rate", "current_funding"), "funding_8h": same("funding_8h"),
        "open_interest": same("open_interest"),
    }, rejects=_BASE_REJECTS),
    Kind("perpetuals_trades", "perpetuals_trades", {
        **_TS, **_TRADE, "tick_direction": same("tick_direction"), "index_price": same("index_price"),
        "mark_price": same("mark_price"), "liquidation": liquidation,
    }, required=("timestamp", "instrument", "trade_id", "price", "amount", "direction"),
        rejects=_TRADE_REJECTS, trade=True),
    Kind("perpetuals_depth", "perpetuals_orderbook_depth", {
        **_TS, "currency": CURRENCY, **_DEPTH, "index_price": same("index_price"),
    }, rejects=_DEPTH_REJECTS, from_extra=_depth_from, uses=("bids", "asks")),
    Kind("perpetuals_ohlcv", "perpetuals_ohlcv", _OHLCV, rejects=_BASE_REJECTS),
    Kind("futures_ohlcv", "futures_ohlcv", _OHLCV, rejects=_BASE_REJECTS),
    Kind("options_ohlcv", "options_ohlcv", {
        **_TS, "currency": CURRENCY, **{c: ohlc(c) for c in ("open", "high", "low", "close")},
        "volume": nonzero("volume"), "mark_price": ohlcv_mark, "mark_iv": nonzero("implied_volatility"),
    }, rejects=_BASE_REJECTS),
    Kind("options_greeks", "options_greeks", {**_TS, "currency": CURRENCY, **_GREEKS}, rejects=_BASE_REJECTS),
    Kind("funding_rates", "funding_rates", {
        **_TS, "currency": CURRENCY, "interest_8h": first_of("funding_rate", "interest_8h"),
    }, rejects=_BASE_REJECTS),
    Kind("index_prices", "index_prices", {
        "timestamp": same("timestamp"),
        "index_name": const("lower(t.\"currency\"::text) || '_usd'"), "price": same("price"),
    }, required=("timestamp", "currency", "price"),
        rejects=(("no timestamp", "t.timestamp IS NULL"), ("no currency", "t.currency IS NULL"),
                 ("no price", "t.price IS NULL"))),
)}

# the source tables of a fixed name (per-currency ones are matched by pattern in catalog.py)
FIXED = {
    "perpetuals_quotes": "perpetuals_quotes", "perpetuals_trades": "perpetuals_trades",
    "perpetuals_orderbook_depth": "perpetuals_depth", "perpetuals_ohlcv": "perpetuals_ohlcv",
    "futures_ohlcv": "futures_ohlcv", "options_ohlcv": "options_ohlcv", "options_greeks": "options_greeks",
    "funding_rates": "funding_rates", "index_prices": "index_prices",
}
PER_CURRENCY = {"option_quotes": "option_quotes", "option_trades": "option_trades",
                "option_orderbook_depth": "option_depth"}


def missing_required(kind: Kind, src: Source) -> list[str]:
    return [c for c in kind.required if not src.has(c)]


def unused_columns(kind: Kind, src: Source) -> list[str]:
    """Source columns the import does not carry over (no column of ours means that)."""
    read = set(kind.uses)
    for expr in kind.columns.values():
        read.update(_READS.findall(expr(src).as_string(None)))
    return [c for c in src.columns if c not in read]


_READS = re.compile(r't\."([^"]+)"')


def select(kind: Kind, src: Source, types: dict[str, str], where: sql.Composable) -> sql.Composed:
    """``COPY (SELECT <target columns cast to their types>, <reject reason> FROM <source> AS t <where>)
    TO STDOUT``, in timestamp order (NULL timestamps last)."""
    exprs = [sql.SQL("({})::{}").format(expr(src), sql.SQL(types[col])) for col, expr in kind.columns.items()]
    conds = [sql.SQL("WHEN {} THEN {}").format(sql.SQL(cond), sql.Literal(reason)) for reason, cond in kind.rejects]
    reject = sql.SQL("CASE {} END").format(sql.SQL(" ").join(conds)) if conds else sql.SQL("NULL::text")
    extra = kind.from_extra(src) if kind.from_extra else sql.SQL("")
    return sql.SQL("COPY (SELECT {}, {} FROM {} AS t{}{} ORDER BY t.timestamp) TO STDOUT (FORMAT BINARY)").format(
        sql.SQL(", ").join(exprs), reject, sql.Identifier(src.name), extra, where)
