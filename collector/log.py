"""JSON logs: one object per line on stderr, with a stable ``event`` key.

Use ``log.info("event_name", extra={...})``: the message *is* the event name; details go in ``extra``.
A condition that repeats (a malformed frame, a failing flush) is logged once and then counted by the
caller.
"""

from __future__ import annotations

import logging
import sys
import time

from pythonjsonlogger.json import JsonFormatter

_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _Formatter(JsonFormatter):
    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging's name)
        t = time.gmtime(record.created)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"

    def __init__(self) -> None:
        super().__init__(_FIELDS, rename_fields={"message": "event", "levelname": "level", "asctime": "time", "name": "logger"})


def setup(level: str = "INFO", stream=None) -> None:
    """Route the root logger to ``stream`` (stderr) as JSON lines. Safe to call more than once."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_collector", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter())
    handler._collector = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("websockets", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


_stream_log = logging.getLogger("collector.stream")


def bad_message(reason: str, where: str = "") -> None:
    """The first message of a kind a stream could not use (the Pipeline counts the rest)."""
    _stream_log.warning("bad_message", extra={"reason": reason[:300], "channel": where[:200],
                                              "action": "skipped; counted, logged once per reason"})
