"""`collector funding`: perpetual funding history (every 8 h by default), with catch-up.

Per perpetual, ``public/get_funding_rate_history`` (hourly rows) from just after the newest stored row
(or ``FUNDING_CATCHUP_HORIZON`` ago when there is none, or when that is older) up to the exchange's
``now``, in chunks, oldest first: missed periods are filled and a repeated run adds nothing twice.
"""

from __future__ import annotations

from typing import Any

from collector.config import Settings
from collector.deribit import parse
from collector.deribit.fields import datetime_to_ms, ms_to_datetime
from collector.deribit.instruments import is_perpetual
from collector.deribit.rest import RestClient
from collector.jobs import chain
from collector.jobs.restjob import Gap, Outcome, RestPass, Task, book_summaries, exchange_ms
from collector.records import Funding

JOB = "funding"
HOUR_MS = 3_600_000
CHUNK_MS = 7 * 24 * HOUR_MS         # rows per request: a week of hourly rows
OFFLINE_LOOKBACK_MS = 24 * HOUR_MS  # without the database's resume points, fetch this much (spooled)


def run(settings: Settings, **pass_kw: Any) -> Outcome:
    """One pass; ``pass_kw`` go to :class:`RestPass` (threads, bucket, client_kw)."""
    with RestPass(settings, JOB, **pass_kw) as p:
        ok, now = p.one("get_time", lambda c: exchange_ms(c.get_time()))
        if not ok:
            return p.outcome
        assert now is not None
        # mypy cannot infer a lambda with a default argument (binding the loop variable): ignore[misc]
        listed = p.run([Task(f"futures {src}", lambda c, src=src: book_summaries(c, src, "future"))  # type: ignore[misc]
                        for src in chain.sources(settings.currencies)])   # SOL_USDC-PERPETUAL: under USDC
        by_cur = chain.split({t.split(" ", 1)[1]: rows for t, rows in listed.items()}, settings.currencies)
        perps = [s["instrument_name"] for cur in settings.currencies for s in by_cur[cur]
                 if is_perpetual(s["instrument_name"])]
        horizon = int(settings.funding_catchup_horizon_s * 1000)
        last = p.stored_until([(Funding, perps)])
        if last is None:
            horizon, last = min(horizon, OFFLINE_LOOKBACK_MS), {}
        tasks = []
        for name in perps:
            ts = last.get(name)
            start = max(now - horizon, datetime_to_ms(ts) + 1 if ts is not None else 0)
            gap = Gap("funding_rates", ms_to_datetime(start), ms_to_datetime(now), recoverable=True)
            tasks.append(Task(name, _history(p, name, start, now), gap))
        p.run(tasks)
    return p.outcome


def _history(p: RestPass, name: str, start: int, end: int):
    def fetch(c: RestClient) -> int:
        n, s = 0, start
        while s <= end:
            e = min(end, s + CHUNK_MS - 1)
            lo, hi = ms_to_datetime(s), ms_to_datetime(e)
            rows = [r for r in parse.funding(name, c.get_funding_rate_history(name, s, e)) if lo <= r.timestamp <= hi]
            p.add(rows)  # stored even if a later chunk fails: the next run resumes after them
            n += len(rows)
            s = e + 1
        return n

    return fetch
