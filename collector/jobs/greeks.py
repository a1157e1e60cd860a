"""`collector greeks`: delta, gamma, vega, theta, rho and the IVs of every live option (hourly by default).

The chain comes from one ``get_book_summary_by_currency?kind=option`` per ``currency=`` source (``BTC``,
``ETH``, ``USDC`` for SOL and the other linear bases: :func:`collector.jobs.chain.sources`), then one
``public/ticker`` per option. An option that is no longer open when its ticker is read (it expired in
between) is skipped quietly, like one Deribit no longer knows.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from collector.config import Settings
from collector.deribit import parse
from collector.deribit.rest import RestClient
from collector.jobs import chain
from collector.jobs.restjob import Gap, Outcome, RestPass, Task, book_summaries

JOB = "greeks"


def run(settings: Settings, **pass_kw: Any) -> Outcome:
    """One pass; ``pass_kw`` go to :class:`RestPass` (threads, bucket, client_kw)."""
    with RestPass(settings, JOB, **pass_kw) as p:
        # mypy cannot infer a lambda with a default argument (binding the loop variable): ignore[misc]
        listed = p.run([Task(f"options {src}", lambda c, src=src: book_summaries(c, src, "option"))  # type: ignore[misc]
                        for src in chain.sources(settings.currencies)])
        by_cur = chain.split({t.split(" ", 1)[1]: rows for t, rows in listed.items()}, settings.currencies)
        names = [s["instrument_name"] for cur in settings.currencies for s in by_cur[cur]]
        now = datetime.now(timezone.utc)
        gap = Gap("options_greeks", now, now, recoverable=False)
        p.run([Task(name, greeks_task(p, name), gap) for name in names])
    return p.outcome


def greeks_task(p: RestPass, name: str):
    def fetch(c: RestClient) -> None:
        ticker = c.ticker(name)
        if type(ticker) is dict and ticker.get("state", "open") != "open":
            p.skip(name)  # expired between listing and fetch
            return
        p.add([parse.greeks_from_ticker(ticker)])

    return fetch
