"""`collector depth`: top-N order-book snapshots (every 5 min by default).

Perpetuals go to ``perpetuals_orderbook_depth``; options (all live ones, or the top
``DEPTH_OPTIONS_TOP_N`` by open interest per currency) to the per-currency option depth relations. One
``public/get_order_book`` per instrument, asked for the smallest depth Deribit allows that covers N and
cut to N levels.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from collector.config import Settings
from collector.deribit import parse
from collector.deribit.instruments import is_perpetual
from collector.deribit.rest import RestClient
from collector.jobs import chain
from collector.jobs.restjob import Gap, Outcome, RestPass, Task, book_summaries
from collector.records import OptionBookDepth, table_name

JOB = "depth"
BOOK_DEPTHS = (1, 5, 10, 20, 50, 100, 1000, 10000)  # the values get_order_book accepts


def request_depth(n: int) -> int:
    """The smallest depth Deribit accepts that gives at least ``n`` levels (``n`` <= 10000)."""
    return next((d for d in BOOK_DEPTHS if d >= n), BOOK_DEPTHS[-1])


def top_by_open_interest(summaries: list[dict], n: int) -> list[str]:
    """Option names, most open interest first (then name); all of them when ``n`` is 0."""
    def oi(s: dict) -> float:
        v = s.get("open_interest")
        return float(v) if type(v) is int or type(v) is float else 0.0

    ranked = sorted(summaries, key=lambda s: (-oi(s), s["instrument_name"]))
    names = [s["instrument_name"] for s in ranked]
    return names[:n] if n else names


def run(settings: Settings, **pass_kw: Any) -> Outcome:
    """One pass; ``pass_kw`` go to :class:`RestPass` (threads, bucket, client_kw)."""
    with RestPass(settings, JOB, **pass_kw) as p:
        listing = []
        srcs = chain.sources(settings.currencies)   # SOL's instruments are listed under USDC
        for src in srcs:
            # mypy cannot infer a lambda with a default argument (binding the loop variable): ignore[misc]
            listing += [Task(f"futures {src}", lambda c, src=src: book_summaries(c, src, "future")),  # type: ignore[misc]
                        Task(f"options {src}", lambda c, src=src: book_summaries(c, src, "option"))]  # type: ignore[misc]
        listed = p.run(listing)
        futures = chain.split({src: listed[f"futures {src}"] for src in srcs if f"futures {src}" in listed},
                              settings.currencies)
        options = chain.split({src: listed[f"options {src}"] for src in srcs if f"options {src}" in listed},
                              settings.currencies)
        n = settings.depth_top_n
        now = datetime.now(timezone.utc)
        tasks = []
        for cur in settings.currencies:
            perps = [s["instrument_name"] for s in futures[cur] if is_perpetual(s["instrument_name"])]
            chosen = top_by_open_interest(options[cur], settings.depth_options_top_n)
            perp_gap = Gap("perpetuals_orderbook_depth", now, now, recoverable=False)
            option_gap = Gap(table_name(OptionBookDepth, cur), now, now, recoverable=False)
            tasks += [Task(name, snapshot_task(p, name, n, option=False), perp_gap) for name in perps]
            tasks += [Task(name, snapshot_task(p, name, n, option=True), option_gap) for name in chosen]
        p.run(tasks)
    return p.outcome


def snapshot_task(p: RestPass, name: str, n: int, option: bool):
    def fetch(c: RestClient) -> None:
        p.add([parse.book_depth(c.get_order_book(name, request_depth(n)), n, option=option)])

    return fetch
