"""Which options a stream follows: the live chain of a currency, ranked by open interest then volume."""

from __future__ import annotations

from typing import Any, Iterable

from collector.deribit.instruments import is_option

__all__ = ["rank_options", "live_names"]


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
