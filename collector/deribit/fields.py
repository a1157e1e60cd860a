"""Field conversion rules shared by the parsers. Pure; see :mod:`collector.deribit.parse` for the rules.

The home of the time conversions both ways: :func:`ms_to_datetime` (a message's ms epoch -> aware UTC
datetime) and :func:`datetime_to_ms` (a datetime -> the ms epoch a request takes, or a resume point).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Mapping

from collector.deribit.frames import ParseError

__all__ = [
    "ParseError", "bad_number", "ms_to_datetime", "datetime_to_ms", "num", "req", "text", "instrument_of", "ts",
    "delivery", "currency_of", "currency_of_index", "sides", "iv",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_td = timedelta
_MS = timedelta(milliseconds=1)


def bad_number(field: str, value: Any) -> ParseError:
    return ParseError(f"{field}: expected a number, got {type(value).__name__}")


def ms_to_datetime(ms: Any, field: str = "timestamp") -> datetime:
    """Milliseconds since the epoch (int; an integral float is accepted) -> aware UTC datetime."""
    t = type(ms)
    if t is not int:
        if t is float and ms.is_integer():
            ms = int(ms)
        else:
            raise ParseError(f"{field}: expected integer ms, got {t.__name__}")
    try:
        return _EPOCH + _td(0, 0, ms * 1000)  # positional microseconds: exact, and the cheapest form
    except OverflowError:
        raise ParseError(f"{field}: out of range: {ms}") from None


def datetime_to_ms(t: datetime) -> int:
    """Aware datetime -> milliseconds since the epoch, rounded down (exact: no float on the way)."""
    return (t - _EPOCH) // _MS


def num(d: Mapping[str, Any], field: str) -> float | None:
    """Optional number: missing/null -> None."""
    v = d.get(field)
    if v is None:
        return None
    t = type(v)
    if t is float:
        return v
    if t is int:
        return _int_to_float(field, v)
    raise bad_number(field, v)


def _int_to_float(field: str, v: int) -> float:
    try:
        return float(v)
    except OverflowError:   # an integer beyond any double (a JSON number of 300+ digits)
        raise ParseError(f"{field}: out of range: {str(v)[:20]}…") from None


def req(d: Mapping[str, Any], field: str) -> float:
    """Required number."""
    v: Any = d.get(field)
    t = type(v)
    if t is float:
        return v
    if t is int:
        return _int_to_float(field, v)
    if v is None:
        raise ParseError(f"{field}: missing")
    raise bad_number(field, v)


def text(d: Mapping[str, Any], field: str) -> str | None:
    v = d.get(field)
    if v is None or type(v) is str:
        return v
    if type(v) is int:  # an id sent as a number
        return str(v)
    raise ParseError(f"{field}: expected a string, got {type(v).__name__}")


def instrument_of(d: Any) -> str:
    if type(d) is not dict:
        raise ParseError(f"expected an object, got {type(d).__name__}")
    name = d.get("instrument_name")
    if type(name) is not str or not name:
        raise ParseError("instrument_name: missing or not a string")
    return name


def ts(d: Mapping[str, Any], field: str = "timestamp") -> datetime:
    v = d.get(field)
    if v is None:
        raise ParseError(f"{field}: missing")
    return ms_to_datetime(v, field)


def delivery(d: Mapping[str, Any], field: str = "estimated_delivery_price") -> float | None:
    v = d.get(field)
    if type(v) is str:  # "expired" after expiry (API.md §7)
        return None
    return num(d, field)


@lru_cache(maxsize=1 << 16)
def currency_of(instrument: str) -> str:
    """Base coin of an instrument name (see the module rules): ``BTC_USDC-PERPETUAL`` -> ``BTC``."""
    if type(instrument) is not str:
        raise ParseError("instrument_name: not a string")
    cur = instrument.split("-", 1)[0].split("_", 1)[0]
    if not cur or not cur.isalnum():
        raise ParseError(f"cannot derive a currency from {instrument!r}")
    return cur.upper()


def currency_of_index(index_name: str) -> str:
    """``btc_usd`` -> ``BTC``."""
    return currency_of(index_name)


def sides(d: Mapping[str, Any], bp: str, ba: str, ap: str, aa: str):
    bid_p, bid_a, ask_p, ask_a = num(d, bp), num(d, ba), num(d, ap), num(d, aa)
    if not bid_p and not bid_a:
        bid_p = bid_a = None
    if not ask_p and not ask_a:
        ask_p = ask_a = None
    return bid_p, bid_a, ask_p, ask_a


def iv(d: Mapping[str, Any], field: str, side_price: float | None, side_amount: float | None) -> float | None:
    v = num(d, field)
    if not v or (side_price is None and side_amount is None):
        return None
    return v
