"""The local spool: batches that could not reach the database wait here, on disk, in order.

One file per batch and table: ``<seq:012d>.<table>.spool``, the records msgpack-encoded. A segment is
written to a temporary name, fsync'd, renamed into place and the directory fsync'd, so after a crash a
segment is either complete or absent. Segments are replayed oldest first and deleted only after the
rows are committed. A segment that cannot be decoded is moved aside into ``<spool>/corrupt/`` (never
deleted, never replayed again), counted, and described (:class:`SpoolCorrupt`: its table, currency, row
count and time range when they can still be read) so that the writer records a ``data_gaps`` row.

A hostile host: when the directory cannot be written (full, read-only, quota), :meth:`Spool.append`
raises :class:`SpoolUnwritable` -- a :class:`SpoolFull`, so every caller already treats it as "the rows
are not kept here" -- after one error log line per episode (not one per batch), and counts it. A segment
that cannot be deleted after its commit is left in place and not replayed again by this process (the
next start replays it; the tables' natural keys absorb the copy).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import msgspec

from collector.errors import CollectorError
from collector.records import BY_TABLE, Record

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d{12})\.([a-z0-9_]+)\.spool$")
_encoder = msgspec.msgpack.Encoder()
_decoders: dict[type, msgspec.msgpack.Decoder] = {}
LOG_EVERY_S = 60.0  # at most one spool_unwritable line this often
_Bytes = bytes  # (inside Spool, ``bytes`` is its property)


class SpoolFull(CollectorError):
    """The spool has reached its size limit; the segment was not written."""


class SpoolUnwritable(SpoolFull):
    """The operating system refused the segment (no space, read-only, quota, I/O error)."""


class SpoolCorrupt(CollectorError):
    """A segment could not be decoded; it was moved aside into ``corrupt/`` (``moved_to``; None when even
    that failed: it is then skipped by this process). What could still be read of it: ``rows`` (None:
    unknown), ``first``/``last`` row timestamps, ``currency``."""

    def __init__(self, segment: "Segment", moved_to: Path | None, error: str, rows: int | None = None,
                 first: datetime | None = None, last: datetime | None = None, currency: str = "",
                 written_at: datetime | None = None) -> None:
        super().__init__(f"spool segment {segment.path} could not be decoded: {error}")
        self.segment, self.moved_to, self.error = segment, moved_to, error
        self.rows, self.first, self.last, self.currency = rows, first, last, currency
        self.written_at = written_at   # the file's modification time (its rows are older)


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
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._skip: set[Path] = set()       # segments this process must not replay (see the module doc)
        self.write_failures = 0             # appends the operating system refused
        self.remove_failures = 0            # committed segments that could not be deleted
        self.corrupt_segments = 0
        self.last_error: str | None = None  # set while the directory cannot be written
        self._announced = False             # an unwritable episode was logged (and its end is not yet)
        self._announced_at: float | None = None
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
            for tmp in self.dir.glob("*.tmp"):  # a crash mid-write leaves only a temporary file
                tmp.unlink(missing_ok=True)
        except OSError as err:  # a read-only or missing directory: appends fail (loudly), the process lives
            self._unwritable(err, "opening")
        segs = self._scan()
        self._next = (segs[-1].seq + 1) if segs else 1
        self._bytes = sum(s.size for s in segs)

    def _scan(self) -> list[Segment]:
        out = []
        try:
            entries = list(self.dir.iterdir())
        except OSError:  # missing or not a directory (logged when it was opened): nothing to replay here
            return []
        for p in entries:
            m = _NAME_RE.match(p.name)
            if m and p not in self._skip:
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
        """Write one segment durably. Raises SpoolFull when the limit is reached, SpoolUnwritable when
        the operating system refuses the write (nothing of it is left behind)."""
        payload = _encoder.encode(records)
        with self._lock:
            if self._bytes + len(payload) > self.max_bytes:
                raise SpoolFull(f"spool {self.dir} holds {self._bytes} bytes, limit {self.max_bytes}")
            seq = self._next
            self._next += 1
            path = self.dir / f"{seq:012d}.{table}.spool"
            tmp = path.with_suffix(".tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
                try:
                    _write_all(fd, payload)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, path)
            except OSError as err:
                try:
                    tmp.unlink(missing_ok=True)
                except OSError:
                    pass
                self._unwritable(err, "writing")
                raise SpoolUnwritable(f"spool {self.dir}: {_describe(err)}") from err
            self._bytes += len(payload)
            self.last_error = None
            if self._announced:
                log.warning("spool_writable_again", extra={"spool": str(self.dir), "failed_writes": self.write_failures})
                self._announced = False
        try:
            _fsync_dir(self.dir)
        except OSError as err:  # the segment is in place; only its directory entry may not be durable yet
            log.error("spool_dir_fsync_failed", extra={"spool": str(self.dir), "error": _describe(err)})
        return Segment(seq, table, path, len(payload))

    def _unwritable(self, err: OSError, doing: str) -> None:
        """Count it; one error line per episode, and at most one every :data:`LOG_EVERY_S` (a spool at
        the edge of full takes a small segment and refuses the next: that is not a new episode)."""
        self.write_failures += 1
        now = time.monotonic()
        if not self._announced and (self._announced_at is None or now - self._announced_at >= LOG_EVERY_S):
            self._announced, self._announced_at = True, now
            log.error("spool_unwritable", extra={"spool": str(self.dir), "while": doing, "error": _describe(err),
                                                 "action": "rows that reach the spool are dropped, counted and "
                                                           "recorded in data_gaps"})
        self.last_error = _describe(err)

    def load(self, seg: Segment) -> list[Record]:
        """The segment's rows. Raises SpoolCorrupt (the segment is then set aside), FileNotFoundError
        (already replayed by someone else), OSError (it cannot be read)."""
        rtype = BY_TABLE.get(seg.table)
        data = seg.path.read_bytes()
        try:
            if rtype is None:
                raise msgspec.DecodeError(f"unknown table {seg.table!r}")
            dec = _decoders.get(rtype)
            if dec is None:  # list[rtype]: a type built at run time, which mypy cannot check
                dec = _decoders[rtype] = msgspec.msgpack.Decoder(list[rtype])  # type: ignore[valid-type]
            return dec.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            raise self._set_aside(seg, data, str(err)) from err

    def skip(self, seg: Segment) -> None:
        """Do not offer ``seg`` again in this process (it stays on disk for the next start)."""
        with self._lock:
            if seg.path not in self._skip:
                self._skip.add(seg.path)
                self._bytes -= seg.size

    def _set_aside(self, seg: Segment, data: _Bytes, error: str) -> SpoolCorrupt:
        """Move an undecodable segment into ``corrupt/``, count it, say what it held."""
        rows, first, last, currency = _salvage(seg.table, data)
        try:
            written_at: datetime | None = datetime.fromtimestamp(seg.path.stat().st_mtime, timezone.utc)
        except OSError:
            written_at = None
        target = self.dir / "corrupt" / seg.path.name
        moved: Path | None = target
        try:
            target.parent.mkdir(exist_ok=True, mode=0o750)
            os.replace(seg.path, target)
        except OSError as err:
            log.error("spool_segment_not_moved", extra={"segment": str(seg.path), "error": _describe(err),
                                                        "action": "left in place, not replayed again"})
            moved = None
        with self._lock:
            self._skip.add(seg.path)
            self._bytes -= seg.size
            self.corrupt_segments += 1
        log.error("spool_segment_corrupt", extra={"segment": str(seg.path), "moved_to": str(moved), "error": error,
                                                  "rows": rows})
        return SpoolCorrupt(seg, moved, error, rows, first, last, currency, written_at)

    def remove(self, seg: Segment) -> None:
        """Delete a segment whose rows are committed (one that cannot be deleted is skipped from now on)."""
        with self._lock:
            try:
                seg.path.unlink()
            except FileNotFoundError:
                return
            except OSError as err:
                self._skip.add(seg.path)
                self._bytes -= seg.size
                self.remove_failures += 1
                log.error("spool_segment_not_removed", extra={"segment": str(seg.path), "error": _describe(err),
                                                              "action": "its rows are committed; not replayed "
                                                                        "again by this process"})
                return
            self._bytes -= seg.size
        try:
            _fsync_dir(self.dir)
        except OSError as err:
            log.error("spool_dir_fsync_failed", extra={"spool": str(self.dir), "error": _describe(err)})


def _describe(err: OSError) -> str:
    name = errno.errorcode.get(err.errno or 0, "")
    return f"{name}: {err.strerror or err}" if name else str(err)


def _salvage(table: str, data: bytes) -> tuple[int | None, datetime | None, datetime | None, str]:
    """What an undecodable segment still tells: ``(rows, first, last, currency)`` from a plain msgpack
    decode (a segment of a type whose fields changed decodes; a truncated one does not: all unknown)."""
    try:
        items: Any = msgspec.msgpack.decode(data)
    except (msgspec.DecodeError, ValueError):
        return None, None, None, ""
    if type(items) is not list:
        return None, None, None, ""
    rtype = BY_TABLE.get(table)
    fields = getattr(rtype, "__struct_fields__", ()) if rtype is not None else ()
    ts_i = fields.index("timestamp") if "timestamp" in fields else 0
    cur_i = fields.index("currency") if "currency" in fields else -1
    stamps = [it[ts_i] for it in items if type(it) is list and len(it) > ts_i and isinstance(it[ts_i], datetime)]
    stamps = [t if t.tzinfo else t.replace(tzinfo=timezone.utc) for t in stamps]
    curs = {it[cur_i] for it in items if cur_i >= 0 and type(it) is list and len(it) > cur_i and type(it[cur_i]) is str}
    return len(items), min(stamps, default=None), max(stamps, default=None), curs.pop() if len(curs) == 1 else ""


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
