"""The import's tables on stdout: what would be imported (``--dry-run``), and what was (the final table:
per source table, rows read, written, skipped as duplicates, rejected and why)."""

from __future__ import annotations

from typing import Sequence, TextIO

from collector.legacy import mapping
from collector.legacy.catalog import Catalog, Table
from collector.legacy.engine import Result
from collector.legacy.progress import Part


def _table(out: TextIO, head: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(line(head), file=out)
    print(line(["-" * w for w in widths]), file=out)
    for r in rows:
        print(line(r), file=out)


def _n(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


def _not_imported(out: TextIO, cat: Catalog, tables: Sequence[Table]) -> None:
    if cat.bookkeeping:
        print(f"not imported (the old collector's bookkeeping, another meaning than ours): "
              f"{', '.join(cat.bookkeeping)}", file=out)
    if cat.unknown:
        print(f"not imported (not a table the import knows): {', '.join(cat.unknown)}", file=out)
    for t in tables:
        unused = mapping.unused_columns(t.kind, t.source)
        if unused and not t.missing:
            print(f"columns of {t.name} with no column of ours (not carried over): {', '.join(unused)}", file=out)


def dry_run(out: TextIO, rows: Sequence[tuple[Table, int | None, list[Part]]], cat: Catalog, new: Sequence[str],
            exact: bool) -> None:
    print("dry run: nothing is written", file=out)
    cells = []
    for t, count, parts in rows:
        marks = [p.high_water for p in parts if p.high_water is not None]
        if t.missing:
            state = f"not imported: no column {', '.join(t.missing)}"
        elif marks and all(p.finished for p in parts):
            state = "imported before: only newer rows"
        elif marks:
            state = "resumes from " + ", ".join(f"{hw:%Y-%m-%d %H:%M:%S}" for hw in marks)
        else:
            state = "from the start"
        shown = _n(count) if exact or count is None else f"~{count:,}"
        cells.append([t.name, t.target, shown, state])
    _table(out, ["source table", "our table", "rows" if exact else "rows (estimate)", ""], cells, {2})
    if new:
        print(f"would create the tables of currency {', '.join(new)} (collector_ensure_currency)", file=out)
    _not_imported(out, cat, [r[0] for r in rows])


def final(out: TextIO, results: Sequence[Result], cat: Catalog, created: Sequence[str]) -> None:
    cells = []
    for r in results:
        rate = f"{r.read / r.seconds:,.0f}" if r.seconds > 0 and r.read else ""
        note = f"ERROR: {r.error}" if r.error else r.note
        cells.append([r.source, r.target, _n(r.read), _n(r.written), _n(r.skipped), _n(r.rejected_total), rate, note])
    tot = [sum(getattr(r, k) for r in results) for k in ("read", "written", "skipped")]
    secs = sum(r.seconds for r in results)
    cells.append(["total", "", *map(_n, tot), _n(sum(r.rejected_total for r in results)),
                  f"{tot[0] / secs:,.0f}" if secs > 0 and tot[0] else "", ""])
    _table(out, ["source table", "our table", "read", "written", "duplicates", "rejected", "rows/s", ""],
           cells, {2, 3, 4, 5, 6})
    for r in results:
        for reason, n in sorted(r.rejected.items()):
            print(f"rejected from {r.source}: {n:,} ({reason})", file=out)
    if created:
        print(f"created the tables of currency {', '.join(created)}", file=out)
    _not_imported(out, cat, [])
