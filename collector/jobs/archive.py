"""The raw-frame archive (``collector ws --archive DIR``) and the reader ``collector replay`` uses.

Every frame is kept as received, one line each, prefixed by its local receive time:
``{"recv":1732752000.123456,"msg":<the frame as received>}``. Files are hourly (UTC) and gzip-compressed:
``DIR/<CUR>/<CUR>-YYYYMMDDTHH.jsonl.gz``. A file is appended to in gzip members (one per flush), so a
crash loses at most the last second and leaves a readable file (gzip readers concatenate members).

:func:`read_lines` reads these files and plain captures (one Deribit JSON message per line, ``.gz`` or
not) alike, yielding ``(recv_time or None, raw message)``.
"""

from __future__ import annotations

import gzip
import io
import os
import time
from pathlib import Path
from typing import Iterator

import orjson


class Archive:
    def __init__(self, directory: Path | str, currency: str, flush_every_s: float = 1.0,
                 level: int = 3) -> None:
        self.dir = Path(directory) / currency
        self.dir.mkdir(parents=True, exist_ok=True)
        self.currency = currency
        self.flush_every_s = flush_every_s
        self.level = level
        self._buf: list[bytes] = []
        self._size = 0
        self._hour: str | None = None
        self._flushed_at = time.monotonic()

    def path_for(self, hour: str) -> Path:
        return self.dir / f"{self.currency}-{hour}.jsonl.gz"

    def add(self, raw: str | bytes, recv: float) -> None:
        hour = time.strftime("%Y%m%dT%H", time.gmtime(recv))
        if hour != self._hour:
            self.flush()
            self._hour = hour
        if isinstance(raw, str):
            raw = raw.encode()
        line = b'{"recv":%.6f,"msg":%s}\n' % (recv, raw.rstrip(b"\r\n") or b"null")
        self._buf.append(line)
        self._size += len(line)
        if self._size > (4 << 20) or time.monotonic() - self._flushed_at > self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        self._flushed_at = time.monotonic()
        if not self._buf or self._hour is None:
            return
        data = gzip.compress(b"".join(self._buf), compresslevel=self.level, mtime=0)
        self._buf, self._size = [], 0
        with open(self.path_for(self._hour), "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        self.flush()


def _open(path: Path) -> io.BufferedReader:
    f = open(path, "rb")
    magic = f.peek(2)[:2]
    if magic == b"\x1f\x8b":
        return gzip.open(f, "rb")  # type: ignore[return-value]
    return f


def read_lines(path: Path | str) -> Iterator[tuple[float | None, bytes]]:
    """``(receive time or None, raw message bytes)`` for each non-empty line; a truncated gzip tail ends
    the file quietly (a crash mid-write)."""
    with _open(Path(path)) as f:
        try:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                if line.startswith(b'{"recv":'):
                    try:
                        obj = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        yield None, line
                        continue
                    if isinstance(obj, dict) and "msg" in obj and isinstance(obj.get("recv"), (int, float)):
                        yield float(obj["recv"]), orjson.dumps(obj["msg"])
                        continue
                yield None, line
        except (EOFError, gzip.BadGzipFile):
            return
