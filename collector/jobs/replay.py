"""`collector replay FILE...`: feed recorded frames through the stream's own parser and writer.

Accepts the ``--archive`` files of ``collector ws`` and plain captures (one Deribit JSON message per
line, gzip or not). Frames go through :class:`~collector.deribit.pipeline.Pipeline` exactly as live ones do
(same quote de-duplication, same trade checks), then the idempotent writer: replaying a file twice, or
a file whose rows are already stored, adds nothing. Responses, heartbeats and frames it does not
understand are counted and reported, never fatal. Trade gaps found in a file are reported (there is no
exchange to backfill from here: run the live collector for that).
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


def replay(settings: Settings, files: list[Path], batch_rows: int = 5000) -> dict:
    store = BatchStore(settings.require_database_url(), Spool(Path(settings.spool_dir) / "replay", settings.spool_max_bytes))
    batch: list[Record] = []
    totals: Counter = Counter()
    gaps: list[TradeGap] = []

    def sink(r: Record) -> None:
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
              "index": c["index"], "book": c["book"], "control_frames": totals["control_frames"],
              "trade_gaps": len(gaps), "inserted": totals["inserted"], "duplicates": totals["duplicates"],
              "spooled": totals["spooled"], "rejected": totals["rejected"], "dropped": totals["overflow"],
              "not_understood": sum(pipeline.bad.values()), "not_understood_by_reason": dict(pipeline.bad.most_common(20))}
    return report


def run(settings: Settings, files: list[Path]) -> int:
    report = replay(settings, files)
    print(json.dumps(report, indent=None, sort_keys=False), file=sys.stdout)
    return 1 if report["spooled"] or report["dropped"] else 0
