"""The listed universe: currencies, expiry calendar, instrument names and Deribit instrument objects.

Pure: given a date it says which expiries should be listed (Deribit's Contract Introduction Policy:
dailies, weeklies on Fridays, monthlies on the last Friday, quarterlies Mar/Jun/Sep/Dec; all at
08:00 UTC) and how the instrument objects of ``public/get_instruments`` look.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass

from collector.deribit.fields import datetime_to_ms, ms_to_datetime

PERPETUAL_EXPIRY_MS = 32503708800000  # 3000-01-01T08:00Z, as on Deribit
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
UTC = dt.timezone.utc


@dataclass(frozen=True)
class CurrencySpec:
    currency: str
    spot: float            # starting index price (before the seed's jitter)
    vol: float             # annualised index volatility (fraction)
    perp_tick: float
    future_tick: float
    contract_size: float   # USD per future contract
    option_tick: float
    option_min: float
    decimals: int
    long_name: str
    coin_type: str

    @property
    def index_name(self) -> str:
        return f"{self.currency.lower()}_usd"


KNOWN = {
    "BTC": CurrencySpec("BTC", 60000.0, 0.50, 0.5, 2.5, 10.0, 0.0005, 0.1, 8, "Bitcoin", "BITCOIN"),
    "ETH": CurrencySpec("ETH", 3000.0, 0.65, 0.05, 0.25, 1.0, 0.0005, 1.0, 6, "Ethereum", "ETHER"),
    "SOL": CurrencySpec("SOL", 150.0, 0.80, 0.01, 0.01, 1.0, 0.0005, 1.0, 6, "Solana", "SOLANA"),
}


def currency_spec(code: str) -> CurrencySpec:
    code = code.upper()
    if code in KNOWN:
        return KNOWN[code]
    return CurrencySpec(code, 100.0, 0.8, 0.01, 0.01, 1.0, 0.0005, 1.0, 6, code.title(), code)


def expiry_ms(day: dt.date) -> int:
    return datetime_to_ms(dt.datetime(day.year, day.month, day.day, 8, tzinfo=UTC))


def date_code(day: dt.date) -> str:
    """27DEC26-style code (day without a leading zero)."""
    return f"{day.day}{MONTHS[day.month - 1]}{day.year % 100:02d}"


def last_friday(year: int, month: int) -> dt.date:
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return last - dt.timedelta(days=(last.weekday() - 4) % 7)


def settlement_period(day: dt.date) -> str:
    if day == last_friday(day.year, day.month):
        return "month"
    return "week" if day.weekday() == 4 else "day"


def first_expiry_day(now_ms: int) -> dt.date:
    now = ms_to_datetime(now_ms)
    day = now.date()
    return day if now.hour < 8 else day + dt.timedelta(days=1)


def _months_ahead(start: dt.date, count: int, quarterly: bool) -> list[dt.date]:
    out: list[dt.date] = []
    year, month = start.year, start.month
    while len(out) < count:
        if not quarterly or month % 3 == 0:
            friday = last_friday(year, month)
            if friday >= start:
                out.append(friday)
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out


def option_expiries(now_ms: int) -> list[dt.date]:
    """3 dailies, 3 weeklies, 3 monthlies, 4 quarterlies (deduplicated, sorted)."""
    first = first_expiry_day(now_ms)
    days = {first + dt.timedelta(days=i) for i in range(3)}
    friday = first + dt.timedelta(days=(4 - first.weekday()) % 7)
    days |= {friday + dt.timedelta(weeks=i) for i in range(3)}
    days |= set(_months_ahead(first, 3, False)) | set(_months_ahead(first, 4, True))
    return sorted(days)


def future_expiries(now_ms: int) -> list[dt.date]:
    """2 weeklies, 3 monthlies, 4 quarterlies."""
    first = first_expiry_day(now_ms)
    friday = first + dt.timedelta(days=(4 - first.weekday()) % 7)
    days = {friday + dt.timedelta(weeks=i) for i in range(2)}
    days |= set(_months_ahead(first, 3, False)) | set(_months_ahead(first, 4, True))
    return sorted(days)


def nice_step(raw: float) -> float:
    """Round a strike spacing up to 1, 2, 2.5 or 5 times a power of ten."""
    exp = math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10**exp >= raw:
            return m * 10**exp
    return 10.0 ** (exp + 1)  # pragma: no cover


def strikes_for(spot: float, t_years: float, vol: float, count: int) -> list[float]:
    """``count`` strikes centred on the money, spaced to cover roughly +-1.6 standard deviations."""
    width = spot * min(0.9, max(0.03, 1.6 * vol * math.sqrt(max(t_years, 1 / 365))))
    step = nice_step(2 * width / max(count - 1, 1))
    atm = round(spot / step) * step
    half = count // 2
    strikes = [atm + step * (i - half) for i in range(count)]
    return [round(s, 8) for s in strikes if s > 0]


def strike_text(strike: float) -> str:
    if float(strike).is_integer():
        return str(int(strike))
    return f"{strike:.6f}".rstrip("0").replace(".", "d")


def future_name(cur: str, day: dt.date | None) -> str:
    return f"{cur}-PERPETUAL" if day is None else f"{cur}-{date_code(day)}"


def option_name(cur: str, day: dt.date, strike: float, is_call: bool) -> str:
    return f"{cur}-{date_code(day)}-{strike_text(strike)}-{'C' if is_call else 'P'}"


def future_object(spec: CurrencySpec, day: dt.date | None, instrument_id: int, created_ms: int) -> dict:
    perp = day is None
    return {
        "tick_size": spec.perp_tick if perp else spec.future_tick,
        "tick_size_steps": [],
        "taker_commission": 0.0005,
        "settlement_period": "perpetual" if day is None else settlement_period(day),
        "settlement_currency": spec.currency,
        "quote_currency": "USD",
        "price_index": spec.index_name,
        "min_trade_amount": spec.contract_size,
        "max_liquidation_commission": 0.0075,
        "max_leverage": 50,
        "maker_commission": 0.0,
        "kind": "future",
        "is_active": True,
        "instrument_name": future_name(spec.currency, day),
        "instrument_id": instrument_id,
        "instrument_type": "reversed",
        "future_type": "reversed",
        "expiration_timestamp": PERPETUAL_EXPIRY_MS if day is None else expiry_ms(day),
        "creation_timestamp": created_ms,
        "counter_currency": "USD",
        "contract_size": spec.contract_size,
        "block_trade_tick_size": 0.01,
        "block_trade_min_trade_amount": 200000,
        "block_trade_commission": 0.00025,
        "base_currency": spec.currency,
    }


def option_object(spec: CurrencySpec, day: dt.date, strike: float, is_call: bool,
                  instrument_id: int, created_ms: int) -> dict:
    return {
        "tick_size": spec.option_tick,
        "tick_size_steps": [],
        "taker_commission": 0.0003,
        "strike": float(strike),
        "settlement_period": settlement_period(day),
        "settlement_currency": spec.currency,
        "quote_currency": spec.currency,
        "price_index": spec.index_name,
        "option_type": "call" if is_call else "put",
        "min_trade_amount": spec.option_min,
        "maker_commission": 0.0003,
        "kind": "option",
        "is_active": True,
        "instrument_name": option_name(spec.currency, day, strike, is_call),
        "instrument_id": instrument_id,
        "instrument_type": "reversed",
        "expiration_timestamp": expiry_ms(day),
        "creation_timestamp": created_ms,
        "counter_currency": "USD",
        "contract_size": 1.0,
        "block_trade_tick_size": 0.0001,
        "block_trade_min_trade_amount": 25,
        "block_trade_commission": 0.00015,
        "base_currency": spec.currency,
    }
