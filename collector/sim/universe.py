"""The listed universe: currencies, expiry calendar, instrument names and Deribit instrument objects.

Pure: given a date it says which expiries should be listed (Deribit's Contract Introduction Policy:
dailies, weeklies on Fridays, monthlies on the last Friday, quarterlies Mar/Jun/Sep/Dec; all at
08:00 UTC) and how the instrument objects of ``public/get_instruments`` look.

Two families, as on Deribit (API.md §7; the real USDC listing of 2022 in the tests' data):

* inverse (coin-margined) BTC and ETH: ``BTC-PERPETUAL``, dated futures, ``BTC-27DEC24-60000-C``;
  listed under ``currency=BTC``, quoted/settled in the coin, index ``btc_usd``;
* linear (USDC-margined) bases -- SOL, XRP, AVAX, MATIC, ...: ``SOL_USDC-PERPETUAL`` and options
  ``SOL_USDC-27DEC24-150-C``, ``XRP_USDC-30JUN23-0d625-C`` (``d`` is the decimal point); listed under
  ``currency=USDC`` with ``base_currency`` SOL, quoted and settled in USDC, ``instrument_type``
  ``linear``, index ``sol_usdc``. No dated linear futures. When any linear base is simulated, the
  USDC universe holds several (:func:`with_usdc_universe`: SOL and XRP at least) and BTC's and ETH's own
  ``BTC_USDC-PERPETUAL``/``ETH_USDC-PERPETUAL``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass

from collector.deribit.fields import datetime_to_ms, ms_to_datetime
from collector.deribit.instruments import INVERSE, LINEAR_SETTLEMENT, SETTLEMENT_CURRENCIES
from collector.deribit.instruments import strike_text as _strike_text

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
    linear: bool = False     # USDC-margined (every base but BTC and ETH)
    perp_min: float = 0.0    # linear perpetual's min_trade_amount (coin); 0: contract_size

    @property
    def settlement(self) -> str:
        """The ``currency=`` it is listed under: ``USDC`` for a linear base."""
        return LINEAR_SETTLEMENT if self.linear else self.currency

    @property
    def prefix(self) -> str:
        """What its instrument names start with: ``BTC``, ``SOL_USDC``."""
        return f"{self.currency}_{LINEAR_SETTLEMENT}" if self.linear else self.currency

    @property
    def index_decimals(self) -> int:
        return 2 if self.spot >= 100 else 4

    @property
    def index_name(self) -> str:
        return f"{self.currency.lower()}_{'usdc' if self.linear else 'usd'}"

    def as_linear(self) -> "CurrencySpec":
        """BTC's own USDC-linear products (``BTC_USDC-PERPETUAL``): the same coin, linear."""
        return CurrencySpec(self.currency, self.spot, self.vol, self.perp_tick, self.future_tick, 1.0,
                            self.option_tick, self.option_min, self.decimals, self.long_name, self.coin_type,
                            True, 0.001 if self.currency == "BTC" else 0.01)


KNOWN = {
    "BTC": CurrencySpec("BTC", 60000.0, 0.50, 0.5, 2.5, 10.0, 0.0005, 0.1, 8, "Bitcoin", "BITCOIN"),
    "ETH": CurrencySpec("ETH", 3000.0, 0.65, 0.05, 0.25, 1.0, 0.0005, 1.0, 6, "Ethereum", "ETHER"),
    # linear bases: ticks in USDC, amounts in the coin (real USDC listing: SOL tick 0.01, XRP 0.0001)
    "SOL": CurrencySpec("SOL", 150.0, 0.80, 0.01, 0.01, 1.0, 0.01, 1.0, 6, "Solana", "SOLANA", True, 0.1),
    "XRP": CurrencySpec("XRP", 0.6, 0.90, 0.0001, 0.0001, 1.0, 0.0001, 10.0, 6, "XRP", "XRP", True, 1.0),
    "AVAX": CurrencySpec("AVAX", 35.0, 0.90, 0.001, 0.001, 1.0, 0.001, 1.0, 6, "Avalanche", "AVAX", True, 0.1),
    "MATIC": CurrencySpec("MATIC", 1.1, 0.90, 0.0001, 0.0001, 1.0, 0.0001, 10.0, 6, "Polygon", "MATIC", True, 1.0),
}
USDC_UNIVERSE = ("SOL", "XRP")   # the linear bases always listed once any is


def currency_spec(code: str) -> CurrencySpec:
    code = code.upper()
    if code in KNOWN:
        return KNOWN[code]
    return CurrencySpec(code, 100.0, 0.8, 0.01, 0.01, 1.0, 0.01, 1.0, 6, code.title(), code,
                        code not in INVERSE, 0.1)


def with_usdc_universe(currencies: list[str]) -> list[str]:
    """The bases to simulate for these: a linear base (or ``USDC`` itself) brings the USDC universe
    (:data:`USDC_UNIVERSE`) with it, so a listing under ``currency=USDC`` holds several bases."""
    asked = [c.upper() for c in currencies]
    bases = [c for c in asked if c not in SETTLEMENT_CURRENCIES]
    if any(c in SETTLEMENT_CURRENCIES or currency_spec(c).linear for c in asked):
        bases += [c for c in USDC_UNIVERSE if c not in bases]
    return list(dict.fromkeys(bases))


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
    """150.0 -> ``150``, 0.625 -> ``0d625`` (the collector's own rule: one home for it)."""
    return _strike_text(strike)


def future_name(prefix: str, day: dt.date | None) -> str:
    """``prefix`` is :attr:`CurrencySpec.prefix` (``BTC``, ``SOL_USDC``)."""
    return f"{prefix}-PERPETUAL" if day is None else f"{prefix}-{date_code(day)}"


def option_name(prefix: str, day: dt.date, strike: float, is_call: bool) -> str:
    return f"{prefix}-{date_code(day)}-{strike_text(strike)}-{'C' if is_call else 'P'}"


def future_object(spec: CurrencySpec, day: dt.date | None, instrument_id: int, created_ms: int) -> dict:
    """A future's ``get_instruments`` object; a linear perpetual as in the real 2022 USDC listing."""
    perp = day is None
    if spec.linear:
        assert perp, "Deribit lists no dated linear futures"
        return {
            "tick_size": spec.perp_tick,
            "tick_size_steps": [],
            "taker_commission": 0.0005,
            "settlement_period": "perpetual",
            "settlement_currency": LINEAR_SETTLEMENT,
            "rfq": False,
            "quote_currency": LINEAR_SETTLEMENT,
            "price_index": spec.index_name,
            "min_trade_amount": spec.perp_min or spec.contract_size,
            "max_liquidation_commission": 0.0075,
            "max_leverage": 25,
            "maker_commission": 0.0,
            "kind": "future",
            "is_active": True,
            "instrument_name": future_name(spec.prefix, None),
            "instrument_id": instrument_id,
            "instrument_type": "linear",
            "future_type": "linear",
            "expiration_timestamp": PERPETUAL_EXPIRY_MS,
            "creation_timestamp": created_ms,
            "counter_currency": LINEAR_SETTLEMENT,
            "contract_size": 1,
            "block_trade_tick_size": 0.01,
            "block_trade_min_trade_amount": 100,
            "block_trade_commission": 0.0001,
            "base_currency": spec.currency,
        }
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
    """An option's object: inverse (quoted in the coin) or linear (quoted and settled in USDC)."""
    money = LINEAR_SETTLEMENT if spec.linear else spec.currency
    return {
        "tick_size": spec.option_tick,
        "tick_size_steps": [],
        "taker_commission": 0.0003,
        "strike": float(strike),
        "settlement_period": settlement_period(day),
        "settlement_currency": money,
        "quote_currency": money,
        "price_index": spec.index_name,
        "option_type": "call" if is_call else "put",
        "min_trade_amount": spec.option_min,
        "maker_commission": 0.0003,
        "kind": "option",
        "is_active": True,
        "instrument_name": option_name(spec.prefix, day, strike, is_call),
        "instrument_id": instrument_id,
        "instrument_type": "linear" if spec.linear else "reversed",
        "expiration_timestamp": expiry_ms(day),
        "creation_timestamp": created_ms,
        "counter_currency": LINEAR_SETTLEMENT if spec.linear else "USD",
        "contract_size": 1.0,
        "block_trade_tick_size": 0.0001,
        "block_trade_min_trade_amount": 25,
        "block_trade_commission": 0.00015,
        "base_currency": spec.currency,
    }
