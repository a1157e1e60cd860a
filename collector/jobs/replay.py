"""`collector replay FILE...`: feed recorded frames through the stream's own parser and writer.

Accepts the ``--archive`` files of ``collector ws`` and plain captures (one Deribit JSON message per
line, gzip or not). Frames go through :class:`~collector.deribit.pipeline.Pipeline` exactly as live ones do
(same quote de-duplication, same trade checks; the perpetual's ticker and trades go to
``perpetuals_quotes`` and ``perpetuals_trades``), then the idempotent writer: replaying a file twice, or
a file whose rows are already stored, adds nothing. Responses, heartbeats and frames it does not
understand are counted and reported, never fatal. Trade gaps found in a file are reported (there is no
exchange to backfill from here: run the live collector for that).

Understood and deliberately not stored -- combos' tickers and books, dated futures' books and trades,
the rows of a base that is not in ``COLLECTOR_CURRENCIES`` (no tables for it) -- is counted in
``not_recorded`` / ``not_recorded_by_reason``; book changes that do not chain (a capture that starts
mid-stream) in ``book_unchained``. Every other row is filed under its base currency (``SOL_USDC-...``
under SOL, ``BTC_USDC-PERPETUAL`` under BTC).
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path

from collector.config import Settings
from collector.deribit.frames import DecodeError, Heartbeat, Notification, Response, Unknown, classify, decode
from collector.deribit.pipeline import Pipeline
from collector.deribit.sequence import TradeGap
from collector.jobs.archive import read_lines
from collector.log import bad_message as log_bad_message
from collector.records import Record
from collector.store.spool import Spool
from collector.store.writer import BatchStore

log = logging.getLogger(__name__)
# the pipeline's counters of what it understood and has no relation for (reported, never misfiled)
NOT_RECORDED = ("ticker_not_option", "ticker_not_perpetual", "trade_not_option", "trade_other_currency",
                "book_not_recorded", "book_grouped_not_recorded")


def replay(settings: Settings, files: list[Path], batch_rows: int = 5000) -> dict:
    store = BatchStore(settings.require_database_url(), Spool(Path(settings.spool_dir) / "replay", settings.spool_max_bytes))
    batch: list[Record] = []
    totals: Counter = Counter()
    gaps: list[TradeGap] = []

    recorded = set(settings.currencies)

    def sink(r: Record) -> None:
        # a per-currency row of a base with no tables here (SOL's quote, COLLECTOR_CURRENCIES=BTC,ETH)
        if type(r).__per_currency__ and r.currency not in recorded:  # type: ignore[attr-defined]
            totals["currency_not_recorded"] += 1
            return
        batch.append(r)

    def flush() -> None:
        if batch:
            res = store.write(batch)
            totals["inserted"] += res.inserted
            totals["duplicates"] += res.duplicates
            totals["spooled"] += res.spooled
            totals["rejected"] += res.rejected
            totals["overflow"] += len(res.overflow)
            batch.clear()

    pipeline = Pipeline("", sink, on_trade_gap=lambda g, *_: gaps.append(g), on_bad=log_bad_message)
    for path in files:
        for _recv, raw in read_lines(path):
            totals["lines"] += 1
            try:
                frame = classify(decode(raw))
            except DecodeError as err:
                pipeline.bad_message(f"frame: {err}", str(path))
                continue
            if type(frame) is Notification:
                pipeline.handle(frame.channel, frame.data)
            elif type(frame) in (Response, Heartbeat):
                totals["control_frames"] += 1
            else:
                assert isinstance(frame, Unknown)
                pipeline.bad_message(f"frame: {frame.reason}", str(path))
            if len(batch) >= batch_rows:
                flush()
    flush()
    store.replay()
    store.close()
    c = pipeline.counts
    report = {"files": len(files), "lines": totals["lines"], "notifications": c["notifications"],
              "quotes": c["quotes"], "quotes_unchanged": c["quotes_unchanged"], "trades": c["trades"],
              "perpetual_quotes": c["perpetual_quotes"], "perpetual_quotes_unchanged": c["perpetual_quotes_unchanged"],
              "perpetual_trades": c["perpetual_trades"],
              "index": c["index"], "book": c["book"], "control_frames": totals["control_frames"],
              "trade_gaps": len(gaps), "inserted": totals["inserted"], "duplicates": totals["duplicates"],
              "spooled": totals["spooled"], "rejected": totals["rejected"], "dropped": totals["overflow"],
              "not_understood": sum(pipeline.bad.values()), "not_understood_by_reason": dict(pipeline.bad.most_common(20)),
              # understood, and deliberately not stored: combos, dated futures' books/trades, spot, ...
              "not_recorded": sum(v for k, v in c.items() if k in NOT_RECORDED) + totals["currency_not_recorded"],
              "not_recorded_by_reason": {k: v for k, v in sorted(c.items()) if k in NOT_RECORDED and v},
              "book_unchained": c["book_breaks"] + c["book_dropped"]}
    if totals["currency_not_recorded"]:
        by_reason: dict = report["not_recorded_by_reason"]  # type: ignore[assignment]
        by_reason["currency_not_recorded"] = totals["currency_not_recorded"]
    return report


def run(settings: Settings, files: list[Path]) -> int:
    report = replay(settings, files)
    print(json.dumps(report, indent=None, sort_keys=False), file=sys.stdout)
    return 1 if report["spooled"] or report["dropped"] else 0
