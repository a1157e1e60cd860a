"""Pure continuity checkers: trade_seq per instrument, change_id chains per book (API.md §6.1, §10).

They hold only their own per-instrument state (owned by the caller, one checker per stream); no I/O,
no clock. They report, the caller acts (write a ``data_gaps`` row, backfill over REST, resubscribe).
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from collector.deribit.frames import ParseError

__all__ = [
    "TradeGap", "TradeDuplicate", "TradeSequence", "BookStatus", "BookStep", "BookChain",
]


class TradeGap(NamedTuple):
    """Trades ``from_seq..to_seq`` (inclusive) of ``instrument`` were never seen."""

    instrument: str
    from_seq: int
    to_seq: int

    @property
    def missing_count(self) -> int:
        return self.to_seq - self.from_seq + 1


class TradeDuplicate(NamedTuple):
    """``seq`` is not newer than the last seen ``last_seq`` (a replay, or an older trade): drop it."""

    instrument: str
    seq: int
    last_seq: int


class TradeSequence:
    """Tracks the last ``trade_seq`` of every instrument of one stream.

    The first seq seen for an instrument sets the baseline (no gap can be known before it) unless the
    caller seeded it with the last stored seq (:meth:`seed`), so a restart reports what it missed.
    ``trade_seq`` is contiguous per instrument: a jump from 7 to 10 is a gap 8..9.
    """

    __slots__ = ("_last",)

    def __init__(self, seeds: dict[str, int] | None = None) -> None:
        self._last: dict[str, int] = dict(seeds or {})

    def seed(self, instrument: str, last_seq: int) -> None:
        """Set the baseline (e.g. the last stored seq); never moves an existing baseline backwards."""
        cur = self._last.get(instrument)
        if cur is None or last_seq > cur:
            self._last[instrument] = last_seq

    def last(self, instrument: str) -> int | None:
        return self._last.get(instrument)

    def advance(self, instrument: str, seqs: Iterable[int]) -> int | None:
        """Trades fetched from elsewhere (a backfill) move the baseline only over a contiguous run from
        it, so a hole beyond what was fetched is still reported when the stream reaches it. With no
        baseline yet, the newest fetched seq becomes it. Returns the baseline."""
        last = self._last.get(instrument)
        ordered = sorted(set(seqs))
        if not ordered:
            return last
        if last is None:
            self._last[instrument] = ordered[-1]
            return ordered[-1]
        for s in ordered:
            if s <= last:
                continue
            if s != last + 1:
                break
            last = s
        self._last[instrument] = last
        return last

    def forget(self, instrument: str) -> None:
        """Drop an expired instrument's state."""
        self._last.pop(instrument, None)

    def feed(self, instrument: str, seq: int) -> TradeGap | TradeDuplicate | None:
        """Record ``seq``; None when it follows the last one (or is the first), else a gap or duplicate."""
        last = self._last.get(instrument)
        if last is None:
            self._last[instrument] = seq
            return None
        if seq == last + 1:
            self._last[instrument] = seq
            return None
        if seq <= last:
            return TradeDuplicate(instrument, seq, last)
        self._last[instrument] = seq
        return TradeGap(instrument, last + 1, seq - 1)


class BookStatus:
    OK = "ok"                    # a change that chains onto the previous one
    SNAPSHOT = "snapshot"        # a new baseline (first message, or a fresh snapshot after resubscribing)
    DUPLICATE = "duplicate"      # change_id already seen: drop
    RESUBSCRIBE = "resubscribe"  # chain broken: unsubscribe + subscribe this one channel
    AWAITING = "awaiting"        # a change while waiting for the snapshot we asked for: drop


class BookStep(NamedTuple):
    status: str
    instrument: str
    change_id: int
    prev_change_id: int | None = None
    expected_prev: int | None = None
    reason: str = ""


def _int_or_none(data: dict, field: str) -> int | None:
    v = data.get(field)
    if v is None or type(v) is int:
        return v
    raise ParseError(f"{field}: expected an integer, got {type(v).__name__}")


class BookChain:
    """Checks ``book.*`` notifications of many instruments: ``prev_change_id`` must equal the previous
    ``change_id`` (never assume ids are contiguous).

    A message is a snapshot when ``type == "snapshot"`` (even if it carries a ``prev_change_id``, seen
    in 2022), when it has no ``type`` and no ``prev_change_id`` (2019-era messages; also every message of
    the grouped ``book.{inst}.{group}.{depth}.{interval}`` channel), or when ``prev_change_id`` is 0 (an
    ETH option in 2021 sent ``type: change, prev_change_id: 0`` as its first message) -- the rule tardis
    uses. A change for an instrument with no baseline, or whose ``prev_change_id`` does not match, asks
    for a resubscribe once; further changes are dropped (``AWAITING``) until the new snapshot arrives.
    """

    __slots__ = ("_last", "_awaiting")

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._awaiting: set[str] = set()

    def last(self, instrument: str) -> int | None:
        return self._last.get(instrument)

    def reset(self, instrument: str) -> None:
        """Forget an instrument (unsubscribed, expired, or the connection was replaced)."""
        self._last.pop(instrument, None)
        self._awaiting.discard(instrument)

    def reset_all(self) -> None:
        """A new connection: every book starts again from its snapshot."""
        self._last.clear()
        self._awaiting.clear()

    def feed(self, data: Any) -> BookStep:
        """Check one book notification's ``data``. Raises ParseError on a malformed message."""
        if type(data) is not dict:
            raise ParseError(f"book: expected an object, got {type(data).__name__}")
        inst = data.get("instrument_name")
        if type(inst) is not str or not inst:
            raise ParseError("instrument_name: missing or not a string")
        cid = data.get("change_id")
        if type(cid) is not int:
            raise ParseError("change_id: missing or not an integer")
        prev = _int_or_none(data, "prev_change_id")
        kind = data.get("type")
        if kind == "snapshot" or prev == 0 or (kind is None and prev is None):
            self._last[inst] = cid
            self._awaiting.discard(inst)
            return BookStep(BookStatus.SNAPSHOT, inst, cid, prev)
        last = self._last.get(inst)
        if inst in self._awaiting:
            return BookStep(BookStatus.AWAITING, inst, cid, prev)
        if last is None:
            self._awaiting.add(inst)
            return BookStep(BookStatus.RESUBSCRIBE, inst, cid, prev, None, "change before any snapshot")
        if prev is None:
            self._awaiting.add(inst)
            self._last.pop(inst, None)
            return BookStep(BookStatus.RESUBSCRIBE, inst, cid, prev, last, "change without prev_change_id")
        if prev == last:
            self._last[inst] = cid
            return BookStep(BookStatus.OK, inst, cid, prev)
        if cid == last:
            return BookStep(BookStatus.DUPLICATE, inst, cid, prev, last)
        self._awaiting.add(inst)
        self._last.pop(inst, None)
        return BookStep(BookStatus.RESUBSCRIBE, inst, cid, prev, last,
                        f"prev_change_id {prev} != last change_id {last}")
