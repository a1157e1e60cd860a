r"""What kind of instrument a Deribit instrument name is (API.md §7). Pure: a name in, a kind out.

=============  ==================================================================================
kind           name forms
=============  ==================================================================================
``option``     ``BTC-27DEC26-100000-C``, ``ETH-22FEB19-140-P``; linear ``XRP_USDC-30JUN23-0d625-C``
               (``d`` is the decimal point)
``perpetual``  ``BTC-PERPETUAL``, linear ``SOL_USDC-PERPETUAL``
``future``     ``BTC-27DEC26``, ``BTC-5AUG23`` (expiry ``DMMMYY``, day of one or two digits)
``combo``      ``BTC-FS-29APR22_PERP`` (future spread), ``BTC-CS-29APR22-39300_39600`` (call spread),
               ``BTC-STRD-30SEP22-20000``, ``BTC-CSR12-16SEP22-21000_23000``: the second part is a
               strategy code (letters, then digits maybe), never an expiry
``spot``       ``BTC_USDC``, ``BTC_USDT``: a pair, no ``-``
=============  ==================================================================================

:func:`kind_of` answers None for a name of none of these forms (an index name such as ``btc_usd``, a
typo). A combo is never taken for an option: ``BTC-CS-29APR22-39300_39600`` has as many ``-`` as an
option, so counting them is not enough.

What a currency is on Deribit (:class:`Currency`, :func:`currency`)
-------------------------------------------------------------------

===================  ==========================================  ==========================================
\                    inverse: ``BTC``, ``ETH`` (:data:`INVERSE`)  linear: ``SOL``, ``XRP``, ``AVAX``, ...
===================  ==========================================  ==========================================
asked for as         ``currency=BTC`` (+ ``USDC`` for BTC's own   ``currency=USDC``, kept by name prefix
                     linear ``BTC_USDC-...`` instruments)          ``SOL_USDC-`` (``base_currency`` SOL)
perpetual            ``BTC-PERPETUAL``                             ``SOL_USDC-PERPETUAL``
options              ``BTC-27DEC24-60000-C``                       ``SOL_USDC-27DEC24-150-C``,
                                                                   ``XRP_USDC-30JUN23-0d625-C`` (0.625)
index                ``btc_usd``                                   ``sol_usdc``
option prices in     the coin (0.0365 BTC)                         USDC
perpetual prices in  USD; amounts and OI in USD                    USDC; amounts and OI in the coin
settled in           the coin                                      USDC
===================  ==========================================  ==========================================

BTC's and ETH's own USDC-linear instruments (``BTC_USDC-PERPETUAL``, ``ETH_USDC-...`` options) are
recorded with BTC's and ETH's inverse ones, into the same ``btc_*``/``eth_*`` and shared relations: the
instrument name tells them apart, and :func:`price_unit` says which unit a row's prices are in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["OPTION", "PERPETUAL", "FUTURE", "COMBO", "SPOT", "KINDS", "kind_of", "is_option", "is_perpetual",
           "is_future", "INVERSE", "LINEAR_SETTLEMENT", "SETTLEMENT_CURRENCIES", "Currency", "currency",
           "base_of", "is_linear", "settlement_of", "strike_of", "strike_text", "price_unit"]

OPTION = "option"
PERPETUAL = "perpetual"
FUTURE = "future"
COMBO = "combo"
SPOT = "spot"
KINDS = (OPTION, PERPETUAL, FUTURE, COMBO, SPOT)

_BASE = r"[A-Z0-9]+(?:_[A-Z0-9]+)?"              # BTC, or a linear pair BTC_USDC
_EXPIRY = r"\d{1,2}(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)\d{2}"
_FORMS = (
    (OPTION, re.compile(rf"{_BASE}-{_EXPIRY}-\d+(?:d\d+)?-[CP]")),
    (PERPETUAL, re.compile(rf"{_BASE}-PERPETUAL")),
    (FUTURE, re.compile(rf"{_BASE}-{_EXPIRY}")),
    (COMBO, re.compile(rf"{_BASE}-[A-Z]+\d*-[A-Z0-9_]+(?:-[A-Z0-9_]+)*")),
    (SPOT, re.compile(r"[A-Z0-9]+_[A-Z0-9]+")),
)


@lru_cache(maxsize=1 << 16)
def kind_of(name: str) -> str | None:
    """The kind of the instrument called ``name`` (one of :data:`KINDS`), or None for an unknown form."""
    if type(name) is not str:
        return None
    for kind, form in _FORMS:
        if form.fullmatch(name):  # the forms are disjoint: the order does not matter
            return kind
    return None


@lru_cache(maxsize=1 << 16)
def is_option(name: str) -> bool:
    return kind_of(name) == OPTION


def is_perpetual(name: str) -> bool:
    return kind_of(name) == PERPETUAL


def is_future(name: str) -> bool:
    """A dated future (a perpetual is not one here: see :func:`is_perpetual`)."""
    return kind_of(name) == FUTURE


# -- what a currency is on Deribit ------------------------------------------------------------------

INVERSE = frozenset({"BTC", "ETH"})     # coin-margined (reversed) on Deribit; every other base is linear
LINEAR_SETTLEMENT = "USDC"               # what the linear instruments are quoted and settled in
SETTLEMENT_CURRENCIES = frozenset({"USDC", "USDT", "EURR"})   # API currencies that are no base of ours


@lru_cache(maxsize=1 << 16)
def base_of(name: str) -> str:
    """The base coin of an instrument (or index) name: ``SOL_USDC-PERPETUAL`` -> ``SOL``, ``sol_usdc`` ->
    ``SOL``, ``BTC-27DEC26-100000-C`` -> ``BTC``; ``""`` for what is not a name."""
    if type(name) is not str:
        return ""
    head = name.split("-", 1)[0].split("_", 1)[0]
    return head.upper() if head.isalnum() else ""


@lru_cache(maxsize=1 << 16)
def is_linear(name: str) -> bool:
    """A USDC-margined instrument: ``SOL_USDC-PERPETUAL``, ``BTC_USDC-PERPETUAL``, ``XRP_USDC-...-C``
    (a spot pair such as ``BTC_USDC`` is not)."""
    if type(name) is not str:
        return False
    head = name.split("-", 1)[0]
    return "-" in name and head.endswith("_" + LINEAR_SETTLEMENT)


def settlement_of(name: str) -> str:
    """The API currency an instrument is listed under: ``USDC`` for a linear one, else its base."""
    return LINEAR_SETTLEMENT if is_linear(name) else base_of(name)


_STRIKE = re.compile(r"\d+(?:d\d+)?")


def strike_of(name: str) -> float | None:
    """An option's strike from its name (``d`` is the decimal point): ``MATIC_USDC-9MAR24-1d02-C`` ->
    1.02, ``XRP_USDC-30JUN23-0d625-C`` -> 0.625, ``BTC-27DEC26-100000-C`` -> 100000.0; None if not an
    option."""
    if not is_option(name):
        return None
    text = name.rsplit("-", 2)[1]
    assert _STRIKE.fullmatch(text)  # is_option matched it
    return float(text.replace("d", "."))


def strike_text(strike: float) -> str:
    """The strike as an option name writes it: 150.0 -> ``150``, 1.02 -> ``1d02``, 0.625 -> ``0d625``."""
    if float(strike).is_integer():
        return str(int(strike))
    return f"{strike:.8f}".rstrip("0").replace(".", "d")


def price_unit(name: str) -> str:
    """What an instrument's prices (trade, bid/ask, mark, settlement) are in: ``USDC`` for a linear
    instrument, the coin for an inverse option (``BTC``), ``USD`` for an inverse perpetual or future."""
    if is_linear(name):
        return LINEAR_SETTLEMENT
    return base_of(name) if is_option(name) else "USD"


@dataclass(frozen=True)
class Currency:
    """One currency the collector records (a base coin: ``BTC``, ``SOL``), as Deribit lists it."""

    code: str

    @property
    def inverse(self) -> bool:
        return self.code in INVERSE

    @property
    def linear(self) -> bool:
        return not self.inverse

    @property
    def sources(self) -> tuple[str, ...]:
        """The ``currency=`` values its instruments are listed under (get_instruments, book summaries,
        trades by currency, ``trades.{kind}.{CUR}`` and ``instrument.state.{kind}.{CUR}`` channels)."""
        return (self.code, LINEAR_SETTLEMENT) if self.inverse else (LINEAR_SETTLEMENT,)

    @property
    def prefix(self) -> str:
        """Instrument names of its linear instruments start with this: ``SOL_USDC-``."""
        return f"{self.code}_{LINEAR_SETTLEMENT}-"

    @property
    def index_name(self) -> str:
        """Its index: ``btc_usd`` (inverse), ``sol_usdc`` (linear)."""
        return f"{self.code.lower()}_usd" if self.inverse else f"{self.code.lower()}_{LINEAR_SETTLEMENT.lower()}"

    @property
    def perpetual(self) -> str:
        """Its main perpetual: ``BTC-PERPETUAL``, ``SOL_USDC-PERPETUAL``."""
        return f"{self.code}-PERPETUAL" if self.inverse else f"{self.prefix}PERPETUAL"

    @property
    def option_price_unit(self) -> str:
        return self.code if self.inverse else LINEAR_SETTLEMENT

    def owns(self, name: str) -> bool:
        """``name`` is one of this currency's instruments (a listing under ``USDC`` holds every base's)."""
        return base_of(name) == self.code

    def keep(self, items, source: str) -> list:
        """The items (dicts with ``instrument_name``) of a listing under ``source`` that are this currency's."""
        if source == self.code:
            return list(items)
        return [i for i in items if type(i) is dict and self.owns(i.get("instrument_name") or "")]


@lru_cache(maxsize=256)
def currency(code: str) -> Currency:
    """The :class:`Currency` of a base code (upper-cased)."""
    return Currency(str(code).upper())
