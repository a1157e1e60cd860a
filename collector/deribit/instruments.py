"""What kind of instrument a Deribit instrument name is (API.md §7). Pure: a name in, a kind out.

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
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["OPTION", "PERPETUAL", "FUTURE", "COMBO", "SPOT", "KINDS", "kind_of", "is_option", "is_perpetual",
           "is_future"]

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
