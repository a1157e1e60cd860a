"""Which options a stream follows: the live chain of a currency, ranked by open interest then volume;
and how a currency's listings are asked for (:func:`sources`) and told apart (:func:`split`).

A currency of ours is a base coin; Deribit lists it under one or more ``currency=`` values
(:attr:`collector.deribit.instruments.Currency.sources`): BTC under ``BTC`` and (its ``BTC_USDC-...``
instruments) ``USDC``, SOL under ``USDC`` only. A timer pass asks each of those once, whatever the number
of currencies sharing it, and :func:`split` files each instrument under its base.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from collector.deribit.instruments import currency, is_option

__all__ = ["rank_options", "live_names", "sources", "split", "fetch_chain"]


def sources(currencies: Iterable[str]) -> list[str]:
    """The ``currency=`` values to ask Deribit for these currencies, each once, in a stable order."""
    return list(dict.fromkeys(src for cur in currencies for src in currency(cur).sources))


def split(listed: Mapping[str, Any], currencies: Iterable[str]) -> dict[str, list]:
    """``{source: [items with instrument_name]}`` -> ``{currency: its items}``; a source that failed (absent)
    gives nothing; items of bases not recorded are left out."""
    out: dict[str, list] = {}
    for cur in currencies:
        c = currency(cur)
        rows: list = []
        for src in c.sources:
            got = listed.get(src)
            if isinstance(got, list):
                rows += c.keep(got, src)
        out[cur] = rows
    return out


def rank_options(summaries: Any, top_n: int) -> list[str]:
    """Option names from a ``get_book_summary_by_currency(kind=option)`` result, most open interest
    first (then 24 h volume, then name); all of them when ``top_n`` is 0."""
    rows = []
    for s in summaries if isinstance(summaries, list) else ():
        if not isinstance(s, dict):
            continue
        name = s.get("instrument_name")
        if not isinstance(name, str) or not is_option(name):
            continue
        oi = s.get("open_interest")
        vol = s.get("volume")
        rows.append((-(oi if isinstance(oi, (int, float)) else 0.0),
                     -(vol if isinstance(vol, (int, float)) else 0.0), name))
    rows.sort()
    names = [r[2] for r in rows]
    return names if top_n == 0 else names[:top_n]


def live_names(instruments: Iterable[Any]) -> set[str]:
    """Names of the active instruments in a ``get_instruments`` result."""
    out = set()
    for i in instruments:
        if isinstance(i, dict) and isinstance(i.get("instrument_name"), str) and i.get("is_active", True):
            out.add(i["instrument_name"])
    return out


def fetch_chain(client: Any, cur: str, top_n: int) -> tuple[set[str], list[str]]:
    """``(live option names, the ones to follow ranked)`` of one currency, from ``get_instruments`` and
    ``get_book_summary_by_currency`` of each of its sources (a ``RestClient``)."""
    c = currency(cur)
    live: set[str] = set()
    summaries: list = []
    for src in c.sources:
        live |= live_names(c.keep(client.get_instruments(src, kind="option"), src))
        summaries += c.keep(client.get_book_summary_by_currency(src, kind="option"), src)
    return live, [n for n in rank_options(summaries, top_n) if n in live]
