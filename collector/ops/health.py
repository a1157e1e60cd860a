"""One health report: what ``collector db status`` prints, what the monitor and ``run-all`` check.

:func:`collect` reads everything (cheaply: row estimates, index probes) into a :class:`Report`; its
``failures`` are the checks that did not pass, each a :class:`Check` with a stable ``name`` (what the
alerts' repeat suppression keys on) and one line for a person. The limits come from the settings
(``COLLECTOR_MAX_AGE``, ``COLLECTOR_MAX_GAP``, ``COLLECTOR_DISK_MAX_USED``).
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql

from collector.config import Settings, format_duration, limit_for
from collector.ops import disk
from collector.store import db, status

log = logging.getLogger(__name__)

TICK_PATTERNS = ("*_quotes", "*_trades")
HOLE_WINDOW = timedelta(hours=24)
FAILED_STATES = ("failed", "overflow")
MAX_HOLES_LISTED = 20


@dataclass(frozen=True)
class Check:
    name: str        # stable: "stale:btc_option_quotes", "hole:eth_option_trades", "disk:database", "job:rest", ...
    text: str        # one line for a person

    def as_json(self) -> dict[str, str]:
        return {"check": self.name, "text": self.text}


@dataclass
class Report:
    relations: list[dict[str, Any]] = field(default_factory=list)
    gaps_24h: list[dict[str, Any]] = field(default_factory=list)
    tick_holes: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    disk: dict[str, Any] = field(default_factory=dict)
    backup: dict[str, Any] = field(default_factory=dict)
    failures: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "failures": [c.as_json() for c in self.failures], "relations": self.relations,
                "gaps_24h": self.gaps_24h, "tick_holes": self.tick_holes, "jobs": self.jobs, "disk": self.disk,
                "backup": self.backup}


def unreachable(err: BaseException) -> Report:
    """The report when the database cannot be reached at all."""
    return Report(failures=[Check("database", f"cannot reach the database: {str(err).strip()[:300]}")])


def is_tick(relation: str) -> bool:
    return any(fnmatch.fnmatchcase(relation, p) for p in TICK_PATTERNS)


def age_text(secs: float | timedelta | None) -> str:
    """``1942`` -> ``32m22s``, ``90061`` -> ``1d1h1m1s``; None -> ``-``."""
    if secs is None:
        return "-"
    s = int(secs.total_seconds() if isinstance(secs, timedelta) else secs)
    if s < 0:
        return f"{s}s"
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    return (f"{d}d" if d else "") + (f"{h}h" if h or d else "") + (f"{m}m" if m or h or d else "") + f"{s}s"


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(timezone.utc).isoformat() if t is not None else None


# -- tick-data holes ----------------------------------------------------------------------------------

_EMPTY_MINUTES = """
SELECT m FROM generate_series(date_trunc('minute', now() - %(window)s), date_trunc('minute', now()) - interval '1 minute',
                              interval '1 minute') AS m
WHERE NOT EXISTS (SELECT 1 FROM {rel} r WHERE r.timestamp >= m AND r.timestamp < m + interval '1 minute')
ORDER BY m
"""
_AROUND = "SELECT (SELECT max(timestamp) FROM {rel} WHERE timestamp < %(a)s), " \
          "(SELECT min(timestamp) FROM {rel} WHERE timestamp >= %(b)s), now()"


def tick_holes(conn: psycopg.Connection, relation: str, max_gap_s: float | None) -> dict[str, Any]:
    """The holes between consecutive rows of ``relation`` in the last 24 h, from one index probe per
    minute (the minutes without a row) and two probes per run of empty minutes that may matter (the
    rows either side: the hole's exact length). A hole of k empty minutes lasts k to k+2 minutes, so
    holes shorter than 2 minutes are not measured (``largest_hole_s`` is then None: under 2 min)."""
    ident = sql.Identifier(relation)
    minutes = [m for (m,) in conn.execute(sql.SQL(_EMPTY_MINUTES).format(rel=ident), {"window": HOLE_WINDOW})]
    runs: list[tuple[datetime, int]] = []     # (first empty minute, length in minutes)
    for m in minutes:
        if runs and runs[-1][0] + timedelta(minutes=runs[-1][1]) == m:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((m, 1))
    longest = max((k for _, k in runs), default=0)
    limit_min = (max_gap_s or float("inf")) / 60.0
    holes = []
    for start, k in runs:
        if not (k + 2 > limit_min or k >= longest - 1):
            continue   # neither over the limit nor possibly the largest
        before, after, now = db.one(conn.execute(sql.SQL(_AROUND).format(rel=ident),
                                                 {"a": start, "b": start + timedelta(minutes=k)}))
        if before is None:
            continue   # nothing before it: the data starts here, no hole
        end = after if after is not None else now
        holes.append({"start": _iso(before), "end": _iso(end), "seconds": round((end - before).total_seconds(), 3),
                      "ongoing": after is None})
    largest = max((h["seconds"] for h in holes), default=None)
    over = [h for h in holes if max_gap_s is not None and h["seconds"] > max_gap_s]
    return {"relation": relation, "max_gap_s": max_gap_s, "largest_hole_s": largest,
            "holes_over_limit": len(over), "holes": sorted(over, key=lambda h: h["start"])[-MAX_HOLES_LISTED:]}


# -- jobs -----------------------------------------------------------------------------------------------

def _status_columns(conn: psycopg.Connection) -> set[str]:
    return {c for (c,) in conn.execute(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'collector_status'")}


def rate_limit_column(columns: set[str]) -> str | None:
    """The column counting rate-limit hits (10028 / HTTP 429) in collector_status, when there is one
    (the newest layouts); the one of the last hour first."""
    candidates = sorted(c for c in columns if "rate_limit" in c)
    hourly = [c for c in candidates if "1h" in c or "hour" in c]
    found = hourly or candidates
    return found[0] if found else None


def jobs(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Each collector_status row with its restarts in the last hour (the stream's ``restart`` gaps) and
    its rate-limit hits (None when the layout does not count them)."""
    if db.one(conn.execute("SELECT to_regclass('collector_status') IS NULL"))[0]:
        return []
    rl = rate_limit_column(_status_columns(conn))
    rl_sql = sql.SQL("s.{}").format(sql.Identifier(rl)) if rl else sql.SQL("NULL::bigint")
    restarts = "(SELECT count(*) FROM data_gaps g WHERE g.cause = 'restart' AND g.timestamp > now() - interval " \
               "'1 hour' AND s.job = 'ws:' || g.currency)" if _exists(conn, "data_gaps") else "NULL::bigint"
    q = sql.SQL("SELECT s.job, s.state, s.timestamp, now() - s.timestamp, s.started_at, s.rows_written, "
                "s.rows_spooled, s.rows_dropped, s.errors, {rl}, {restarts} FROM collector_status s ORDER BY s.job"
                ).format(rl=rl_sql, restarts=sql.SQL(restarts))
    out = []
    for job, state, ts, age, started, written, spooled, dropped, errors, hits, rs in conn.execute(q):
        out.append({"job": job, "state": state, "updated": _iso(ts), "age_s": round(age.total_seconds(), 1),
                    "started_at": _iso(started), "rows_written": written, "rows_spooled": spooled,
                    "rows_dropped": dropped, "errors": errors, "restarts_1h": rs, "rate_limit_hits": hits,
                    "rate_limit_column": rl})
    return out


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return bool(db.one(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)))[0])


# -- the report -------------------------------------------------------------------------------------------

def collect(conn: psycopg.Connection, settings: Settings, *, max_age: tuple[tuple[str, float], ...] | None = None,
            exact: bool = False, record: bool = False) -> Report:
    """Read everything and decide which checks fail. ``record``: add this run's size sample."""
    rep = Report()
    limits = settings.max_age if max_age is None else max_age
    relations = status.relations_for(settings.currencies)
    for rel in relations:
        r = status.relation_status(conn, rel, exact=exact)
        limit = limit_for(limits, rel)
        if r.rows is None:
            verdict = "MISSING"
            rep.failures.append(Check(f"missing:{rel}", f"{rel}: the relation does not exist (collector db migrate)"))
        elif limit is None:
            verdict = "ok" if r.latest else "empty"
        elif r.age is None or r.age.total_seconds() > limit:
            verdict = "STALE"
            age = "no rows" if r.age is None else f"newest row {age_text(r.age)} old"
            rep.failures.append(Check(f"stale:{rel}", f"{rel}: {age} (limit {format_duration(limit)})"))
        else:
            verdict = "ok"
        rep.relations.append({**r.as_json(), "max_age_s": limit, "status": verdict})

    existing = {r["relation"] for r in rep.relations if r["rows"] is not None}
    if _exists(conn, "data_gaps"):
        rep.gaps_24h = status.gaps_summary(conn)
    for rel in (r for r in relations if is_tick(r) and r in existing):
        holes = tick_holes(conn, rel, limit_for(settings.max_gap, rel))
        rep.tick_holes.append(holes)
        if holes["holes_over_limit"]:
            worst = max(holes["holes"], key=lambda h: h["seconds"])
            rep.failures.append(Check(
                f"hole:{rel}", f"{rel}: {holes['holes_over_limit']} hole(s) over {format_duration(holes['max_gap_s'])} "
                f"in the last 24 h, the longest {age_text(worst['seconds'])} from {worst['start'][:19]}"))

    rep.jobs = jobs(conn)
    for j in rep.jobs:
        if j["state"] in FAILED_STATES and j["age_s"] < 86400:
            rep.failures.append(Check(f"job:{j['job']}", f"job {j['job']}: state {j['state']} "
                                      f"({age_text(j['age_s'])} ago), {j['errors']} errors"))

    data_path, why = disk.data_directory(conn)
    fss = [disk.filesystem("database", data_path), disk.filesystem("spool", settings.spool_dir)]
    if data_path is None:
        fss[0]["unknown"] = why
    sizes = disk.table_sizes(conn, relations)
    total = disk.database_bytes(conn)
    grow = disk.growth(conn, total, sizes)
    if record:
        disk.record_sample(conn, total, sizes)
    rep.disk = {"filesystems": fss, "database_bytes": total, "tables": sizes, "growth": grow,
                "days_left": disk.days_left(fss[0], grow["bytes_per_day"]), "max_used_pct": settings.disk_max_used_pct}
    for fs in fss:
        if fs["used_pct"] is not None and fs["used_pct"] > settings.disk_max_used_pct:
            rep.failures.append(Check(f"disk:{fs['what']}", f"disk of the {fs['what']} ({fs['path']}) is "
                                      f"{fs['used_pct']} % full (limit {settings.disk_max_used_pct} %)"))
    rep.backup = disk.newest_backup(settings.backup_dir)
    return rep


def collect_from(settings: Settings, **kw: Any) -> Report:
    """Connect with DATABASE_URL and :func:`collect`; an unreachable database is a failed check."""
    try:
        with db.connect(settings.require_database_url(), autocommit=True) as conn:
            return collect(conn, settings, **kw)
    except psycopg.OperationalError as err:
        return unreachable(err)
