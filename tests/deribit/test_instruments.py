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


# -- what a currency is on Deribit ------------------------------------------------------------------

from collector.deribit.instruments import (  # noqa: E402 - grouped with the tests that use them
    base_of, currency, is_linear, price_unit, settlement_of, strike_of, strike_text,
)


@pytest.mark.parametrize("name, strike", [
    ("MATIC_USDC-9MAR24-1d02-C", 1.02), ("XRP_USDC-30JUN23-0d625-C", 0.625), ("SOL_USDC-27DEC24-150-C", 150.0),
    ("BTC-27DEC26-100000-C", 100000.0), ("ETH-22FEB19-140-P", 140.0),
    ("BTC-PERPETUAL", None), ("BTC-STRD-30SEP22-20000", None), ("btc_usd", None),
])
def test_fractional_strikes_parse(name, strike):
    assert strike_of(name) == strike
    if strike is not None:
        assert strike_text(strike) == name.split("-")[2]   # and write back the same way


@pytest.mark.parametrize("name, base, settles, unit", [
    ("SOL_USDC-PERPETUAL", "SOL", "USDC", "USDC"),
    ("SOL_USDC-27DEC24-150-C", "SOL", "USDC", "USDC"),
    ("MATIC_USDC-9MAR24-1d02-C", "MATIC", "USDC", "USDC"),
    ("BTC_USDC-PERPETUAL", "BTC", "USDC", "USDC"),
    ("BTC-PERPETUAL", "BTC", "BTC", "USD"),
    ("ETH-27DEC24", "ETH", "ETH", "USD"),
    ("BTC-27DEC26-100000-C", "BTC", "BTC", "BTC"),
    ("sol_usdc", "SOL", "SOL", "USD"),   # an index name: its base; not an instrument
])
def test_base_settlement_and_unit(name, base, settles, unit):
    assert base_of(name) == base and P.currency_of(name) == base
    assert settlement_of(name) == settles and price_unit(name) == unit
    assert is_linear(name) == (settles == "USDC")


def test_spot_pairs_are_not_linear_instruments():
    assert not is_linear("BTC_USDC") and base_of("BTC_USDC") == "BTC"


def test_what_a_currency_is():
    sol, btc = currency("sol"), currency("BTC")
    assert (sol.linear, sol.sources, sol.index_name, sol.perpetual, sol.prefix, sol.option_price_unit) == \
        (True, ("USDC",), "sol_usdc", "SOL_USDC-PERPETUAL", "SOL_USDC-", "USDC")
    assert (btc.inverse, btc.sources, btc.index_name, btc.perpetual, btc.option_price_unit) == \
        (True, ("BTC", "USDC"), "btc_usd", "BTC-PERPETUAL", "BTC")
    assert currency("ETH").sources == ("ETH", "USDC")
    assert currency("XRP").index_name == "xrp_usdc"


def test_a_usdc_listing_is_split_by_base(examples):
    """The real 2022 listing under currency=USDC: 16 linear perpetuals of 16 bases; each currency keeps its own."""
    listed = examples.data("rest_get_instruments_real_2022_USDC")
    sol = currency("SOL").keep(listed, "USDC")
    assert [i["instrument_name"] for i in sol] == ["SOL_USDC-PERPETUAL"]
    assert [i["instrument_name"] for i in currency("BTC").keep(listed, "USDC")] == ["BTC_USDC-PERPETUAL"]
    assert all(i["base_currency"] == "SOL" and i["price_index"] == currency("SOL").index_name for i in sol)
    # a base's own listing is kept whole
    assert currency("BTC").keep(listed, "BTC") == listed
