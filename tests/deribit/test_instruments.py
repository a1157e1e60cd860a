"""Instrument kinds from real Deribit names (API.md §7 and the example messages)."""

from __future__ import annotations

import pytest

from collector.deribit import parse as P
from collector.deribit.instruments import (
    COMBO, FUTURE, OPTION, PERPETUAL, SPOT, is_future, is_option, is_perpetual, kind_of,
)

REAL = [
    ("BTC-27DEC26-100000-C", OPTION),
    ("ETH-22FEB19-140-P", OPTION),
    ("BTC-6AUG21-50000-P", OPTION),
    ("XRP_USDC-30JUN23-0d625-C", OPTION),      # linear: d is the decimal point
    ("MATIC_USDC-9MAR24-1d02-C", OPTION),
    ("BTC-PERPETUAL", PERPETUAL),
    ("SOL_USDC-PERPETUAL", PERPETUAL),
    ("LINK_USDC-PERPETUAL", PERPETUAL),
    ("BTC-27DEC26", FUTURE),
    ("BTC-5AUG23", FUTURE),
    ("BTC-5APR19", FUTURE),
    ("BTC-FS-29APR22_PERP", COMBO),            # future spread (public/get_combos)
    ("BTC-CS-29APR22-39300_39600", COMBO),     # call spread: as many "-" as an option
    ("BTC-STRD-30SEP22-20000", COMBO),         # straddle: as many "-" as an option
    ("BTC-CSR12-16SEP22-21000_23000", COMBO),  # call-spread ratio
    ("BTC_USDC", SPOT),
    ("BTC_USDT", SPOT),
]


@pytest.mark.parametrize("name, kind", REAL)
def test_real_names(name, kind):
    assert kind_of(name) == kind
    assert is_option(name) == (kind == OPTION)
    assert is_perpetual(name) == (kind == PERPETUAL)
    assert is_future(name) == (kind == FUTURE)


@pytest.mark.parametrize("name", ["btc_usd", "BTC", "", "BTC-27XYZ26", "BTC-27DEC26-100000-X", "-PERPETUAL",
                                  "BTC-27DEC26-100000-C-1", None, 42])
def test_unknown_forms(name):
    assert kind_of(name) is None
    assert not is_option(name) and not is_perpetual(name) and not is_future(name)


def test_every_listed_instrument_matches_its_kind(examples):
    """get_instruments says each instrument's kind (a perpetual is a future with settlement_period
    perpetual): the name alone gives the same answer."""
    for example in ("rest_get_instruments_real_2021_BTC", "rest_get_instruments_real_2022_USDC",
                    "rest_get_instruments"):
        for i in P.instruments(examples.data(example)):
            perpetual = i.settlement_period == "perpetual"
            want = {"option": OPTION, "spot": SPOT}.get(i.kind) or (PERPETUAL if perpetual else FUTURE)
            assert kind_of(i.name) == want, i


def test_combo_names_of_get_combos(examples):
    combos = examples.data("rest_get_combos")
    assert combos and all(kind_of(c["id"]) == COMBO for c in combos)
    legs = {leg["instrument_name"] for c in combos for leg in c["legs"]}
    assert {kind_of(n) for n in legs} == {OPTION, PERPETUAL, FUTURE}
