"""`collector db migrate` and `collector db status`: wiring between Settings, the store and the terminal."""

from __future__ import annotations

import fnmatch
import json
import logging
import sys

import psycopg

from collector.config import ConfigError, Limits, Settings, format_duration
from collector.ops import health
from collector.store import db, migrate as migrations, status as health_status

log = logging.getLogger(__name__)


def migrate(settings: Settings, dry_run: bool = False) -> int:
    dsn = settings.require_database_url()
    try:
        with db.connect(dsn, autocommit=True) as conn:
            applied = migrations.migrate(conn, settings.currencies, dry_run=dry_run,
                                         on_warning=lambda text: print(f"collector: warning: {text}", file=sys.stderr))
    except migrations.MigrationError as err:
        print(f"collector: migration failed: {err}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as err:
        print(f"collector: cannot reach the database: {str(err).strip()}", file=sys.stderr)
        return 1
    verb = "would apply" if dry_run else "applied"
    if applied:
        print(f"{verb} {len(applied)} migration(s): " + ", ".join(applied))
    else:
        print("database is up to date")
    return 0


def parse_max_age(items: tuple[str, ...], relations: list[str]) -> tuple[tuple[str, float], ...] | None:
    """``("10m", "funding_rates=9h")`` -> the limits (replacing COLLECTOR_MAX_AGE); None when none given.
    A RELATION is a name or a glob that must match one of ``relations``."""
    if not items:
        return None
    limits = Limits()("--max-age", list(items))
    for name, _ in limits:
        if name and not any(fnmatch.fnmatchcase(rel, name) for rel in relations):
            raise ConfigError("--max-age", f"{name}=…", "RELATION must be (or match) one of " + ", ".join(relations))
    return limits


_age_text = health.age_text


def _bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def status(settings: Settings, max_age: tuple[str, ...] = (), as_json: bool = False, exact: bool = False,
           monitor: bool = False) -> int:
    """Print the health report; exit 0 when every check passes, 1 when one fails. ``monitor``: record a
    size sample and, when all is well, send the "resolved" message of an open alert."""
    settings.require_database_url()
    limits = parse_max_age(max_age, health_status.relations_for(settings.currencies))
    report = health.collect_from(settings, max_age=limits, exact=exact, record=monitor)
    if as_json:
        print(json.dumps(report.as_json(), indent=2, default=str))
    else:
        print(render(report))
    if report.failures:
        log.warning("health_check_failed", extra={"checks": [c.name for c in report.failures]})
    if monitor:
        from collector.ops import alert

        if not alert.configured(settings):
            pass
        elif report.failures:   # for the alert that this unit's OnFailure= starts
            alert.record_pending(settings, alert.MONITOR_UNIT, report.failures)
        else:
            alert.resolve(settings)
    return 0 if report.ok else 1


def render(report: health.Report) -> str:
    """The report for a person."""
    if not report.relations:
        return "\n".join(f"FAILED {c.text}" for c in report.failures)
    out = []
    width = max(len(r["relation"]) for r in report.relations)
    out.append(f"{'relation':<{width}}  {'rows':>12}  {'latest (UTC)':<19}  {'age':>10}  {'limit':>6}  status")
    for r in report.relations:
        count = "-" if r["rows"] is None else (f"{r['rows']:,}" if r["rows_exact"] else f"~{r['rows']:,}")
        latest = r["latest"][:19].replace("T", " ") if r["latest"] else "-"
        limit = format_duration(r["max_age_s"]) if r["max_age_s"] is not None else "-"
        out.append(f"{r['relation']:<{width}}  {count:>12}  {latest:<19}  {_age_text(r['age_s']):>10}  {limit:>6}  "
                   f"{r['status']}")
    if report.tick_holes:
        out.append("\ntick data, last 24 h (holes between consecutive rows):")
        for h in report.tick_holes:
            largest = _age_text(h["largest_hole_s"]) if h["largest_hole_s"] is not None else "< 2m"
            limit = format_duration(h["max_gap_s"]) if h["max_gap_s"] is not None else "-"
            out.append(f"  {h['relation']:<{width}}  largest {largest:>10}  limit {limit:>4}  "
                       f"{h['holes_over_limit']} over the limit")
            for hole in h["holes"][-3:]:
                out.append(f"    {hole['start'][:19]} -> {hole['end'][:19]}  {_age_text(hole['seconds'])}"
                           + ("  (ongoing)" if hole["ongoing"] else ""))
    if report.gaps_24h:
        out.append("\ndata gaps, last 24 h:")
        for g in report.gaps_24h:
            out.append(f"  {g['relation']:<{width}}  {g['cause']:<20} {g['gaps']:>6} gap(s), {g['backfilled']} "
                       "backfilled" + ("" if g["recoverable"] else " (not recoverable)"))
    if report.jobs:
        out.append("\njobs:")
        for j in report.jobs:
            hits = "n/a" if j["rate_limit_hits"] is None else str(j["rate_limit_hits"])
            restarts = "n/a" if j["restarts_1h"] is None else str(j["restarts_1h"])
            out.append(f"  {j['job']:<14} {j['state']:<9} updated {_age_text(j['age_s']):>8} ago, "
                       f"{j['rows_written']:,} rows, {j['rows_spooled']:,} spooled, {j['rows_dropped']:,} dropped, "
                       f"{j['errors']} errors, restarts (1 h) {restarts}, rate-limit hits {hits}")
    d = report.disk
    if d:
        out.append("\ndisk:")
        for fs in d["filesystems"]:
            if fs["used_pct"] is None:
                out.append(f"  {fs['what']:<9} unknown" + (f": {fs['unknown']}" if fs.get("unknown") else ""))
            else:
                out.append(f"  {fs['what']:<9} {fs['used_pct']:5.1f} % used, {_bytes(fs['free_bytes'])} free "
                           f"of {_bytes(fs['total_bytes'])} ({fs['path']}; limit {d['max_used_pct']} %)")
        g = d["growth"]
        per_day = f"{_bytes(g['bytes_per_day'])}/day over {_age_text(g['history_s'])}" \
            if g["bytes_per_day"] is not None else "unknown (under an hour of size samples)"
        days = f"{d['days_left']:,.0f} days left at that rate" if d["days_left"] is not None else "days left: unknown"
        out.append(f"  database  {_bytes(d['database_bytes'])}; growth {per_day}; {days}")
        for t in d["tables"]:
            extra = ""
            if t["compressed_chunks"]:
                extra = (f", {t['compressed_chunks']}/{t['chunks']} chunks compressed: "
                         f"{_bytes(t['before_compression_bytes'])} -> {_bytes(t['compressed_bytes'])}")
            rate = g["relations"].get(t["relation"])
            grow = f", {_bytes(rate)}/day" if rate is not None else ""
            out.append(f"    {t['relation']:<{width}} {_bytes(t['total_bytes']):>11}{grow}{extra}")
    b = report.backup
    if b:
        newest = f"{b['newest']}, {_age_text(b['age_s'])} old ({b['count']} kept)" if b["newest"] else "none"
        out.append(f"\nnewest backup in {b['dir']}: {newest}")
    out.append("")
    out.extend(f"FAILED {c.text}" for c in report.failures)
    out.append("all checks passed" if report.ok else f"{len(report.failures)} check(s) failed")
    return "\n".join(out)
