"""`collector db migrate` and `collector db status`: wiring between Settings, the store and the terminal."""

from __future__ import annotations

import json
import logging
import sys
from datetime import timedelta, timezone

import psycopg

from collector.config import ConfigError, Settings, parse_duration
from collector.store import db, migrate as migrations, status as health

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


def parse_max_age(items: tuple[str, ...], relations: list[str]) -> dict[str, float]:
    """``("10m", "funding_rates=9h")`` -> seconds per relation (only relations that get a limit)."""
    out: dict[str, float] = {}
    default: float | None = None
    for item in items:
        rel, sep, text = item.rpartition("=")
        try:
            secs = parse_duration(text)
        except ValueError:
            raise ConfigError("--max-age", item, "DURATION (e.g. 10m) or RELATION=DURATION (e.g. funding_rates=9h)") from None
        if not sep:
            default = secs
        elif rel not in relations:
            raise ConfigError("--max-age", item, "RELATION must be one of " + ", ".join(relations))
        else:
            out[rel] = secs
    if default is not None:
        for rel in relations:
            out.setdefault(rel, default)
    return out


def _age_text(age: timedelta | None) -> str:
    if age is None:
        return "-"
    secs = int(age.total_seconds())
    if secs < 0:
        return f"{secs}s"
    d, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return (f"{d}d" if d else "") + (f"{h}h" if h or d else "") + (f"{m}m" if m or h or d else "") + f"{s}s"


def status(settings: Settings, max_age: tuple[str, ...] = (), as_json: bool = False, exact: bool = False) -> int:
    dsn = settings.require_database_url()
    relations = health.relations_for(settings.currencies)
    limits = parse_max_age(max_age, relations)
    try:
        with db.connect(dsn, autocommit=True) as conn:
            rows = [health.relation_status(conn, rel, exact=exact) for rel in relations]
            gaps = health.gaps_summary(conn) if _exists(conn, "data_gaps") else []
            jobs = health.jobs(conn) if _exists(conn, "collector_status") else []
    except psycopg.OperationalError as err:
        print(f"collector: cannot reach the database: {str(err).strip()}", file=sys.stderr)
        return 1

    verdicts: dict[str, str] = {}
    for r in rows:
        limit = limits.get(r.relation)
        if r.rows is None:
            verdicts[r.relation] = "MISSING"
        elif limit is None:
            verdicts[r.relation] = "ok" if r.latest else "empty"
        elif r.age is None or r.age.total_seconds() > limit:
            verdicts[r.relation] = "STALE"
        else:
            verdicts[r.relation] = "ok"
    failed = [rel for rel, v in verdicts.items() if v in ("MISSING", "STALE")]

    if as_json:
        print(json.dumps({"relations": [{**r.as_json(), "status": verdicts[r.relation],
                                         "max_age_s": limits.get(r.relation)} for r in rows],
                          "gaps_24h": gaps, "jobs": jobs, "ok": not failed}, indent=2))
    else:
        width = max(len(r.relation) for r in rows)
        print(f"{'relation':<{width}}  {'rows':>12}  {'latest (UTC)':<23}  {'age':>12}  status")
        for r in rows:
            count = "-" if r.rows is None else (f"{r.rows:,}" if r.rows_exact else f"~{r.rows:,}")
            latest = r.latest.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if r.latest else "-"
            print(f"{r.relation:<{width}}  {count:>12}  {latest:<23}  {_age_text(r.age):>12}  {verdicts[r.relation]}")
        if gaps:
            print("\ndata gaps, last 24 h:")
            for g in gaps:
                print(f"  {g['relation']:<{width}}  {g['cause']:<20} {g['gaps']:>6} gap(s), {g['backfilled']} backfilled"
                      + ("" if g["recoverable"] else " (not recoverable)"))
        if jobs:
            print("\njobs:")
            for j in jobs:
                print(f"  {j['job']:<20} {j['state']:<10} updated {j['age_s']:>7}s ago, {j['rows_written']:,} rows, "
                      f"{j['rows_spooled']:,} spooled, {j['rows_dropped']:,} dropped, {j['errors']} errors")
    if failed:
        log.warning("relations_stale", extra={"relations": failed})
    return 1 if failed else 0


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return db.one(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)))[0]
