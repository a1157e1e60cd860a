"""The local spool: batches that could not reach the database wait here, on disk, in order.

One file per batch and table: ``<seq:012d>.<table>.spool``, the records msgpack-encoded. A segment is
written to a temporary name, fsync'd, renamed into place and the directory fsync'd, so after a crash a
segment is either complete or absent. Segments are replayed oldest first and deleted only after the
rows are committed. A segment that cannot be decoded is moved aside to ``*.bad`` (never deleted) and
counted.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import msgspec

from collector.errors import CollectorError
from collector.records import BY_TABLE, Record

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d{12})\.([a-z0-9_]+)\.spool$")
_encoder = msgspec.msgpack.Encoder()
_decoders: dict[type, msgspec.msgpack.Decoder] = {}


class SpoolFull(CollectorError):
    """The spool has reached its size limit; the segment was not written."""


class SpoolCorrupt(CollectorError):
    """A segment could not be decoded (it was moved aside as ``*.bad``)."""


@dataclass(frozen=True)
class Segment:
    seq: int
    table: str
    path: Path
    size: int


class Spool:
    """A directory of segments with a size limit. Thread-safe."""

    def __init__(self, directory: Path | str, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        for tmp in self.dir.glob("*.tmp"):  # a crash mid-write leaves only a temporary file
            tmp.unlink(missing_ok=True)
        segs = self._scan()
        self._next = (segs[-1].seq + 1) if segs else 1
        self._bytes = sum(s.size for s in segs)

    def _scan(self) -> list[Segment]:
        out = []
        for p in self.dir.iterdir():
            m = _NAME_RE.match(p.name)
            if m:
                try:
                    size = p.stat().st_size
                except FileNotFoundError:
                    continue
                out.append(Segment(int(m.group(1)), m.group(2), p, size))
        out.sort(key=lambda s: s.seq)
        return out

    @property
    def bytes(self) -> int:
        return self._bytes

    def is_full(self) -> bool:
        return self._bytes >= self.max_bytes

    def segments(self) -> list[Segment]:
        with self._lock:
            return self._scan()

    def __len__(self) -> int:
        return len(self.segments())

    def append(self, table: str, records: Sequence[Record]) -> Segment:
        """Write one segment durably. Raises SpoolFull when the limit is reached."""
        payload = _encoder.encode(records)
        with self._lock:
            if self._bytes + len(payload) > self.max_bytes:
                raise SpoolFull(f"spool {self.dir} holds {self._bytes} bytes, limit {self.max_bytes}")
            seq = self._next
            self._next += 1
            path = self.dir / f"{seq:012d}.{table}.spool"
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                _write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
            _fsync_dir(self.dir)
            self._bytes += len(payload)
            return Segment(seq, table, path, len(payload))

    def load(self, seg: Segment) -> list[Record]:
        rtype = BY_TABLE.get(seg.table)
        try:
            if rtype is None:
                raise msgspec.DecodeError(f"unknown table {seg.table!r}")
            dec = _decoders.get(rtype)
            if dec is None:  # list[rtype]: a type built at run time, which mypy cannot check
                dec = _decoders[rtype] = msgspec.msgpack.Decoder(list[rtype])  # type: ignore[valid-type]
            return dec.decode(seg.path.read_bytes())
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            bad = seg.path.with_suffix(".bad")
            os.replace(seg.path, bad)
            with self._lock:
                self._bytes -= seg.size
            log.error("spool_segment_corrupt", extra={"segment": str(seg.path), "moved_to": str(bad), "error": str(err)})
            raise SpoolCorrupt(str(seg.path)) from err

    def remove(self, seg: Segment) -> None:
        """Delete a segment whose rows are committed."""
        with self._lock:
            try:
                seg.path.unlink()
            except FileNotFoundError:
                return
            self._bytes -= seg.size
        _fsync_dir(self.dir)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
