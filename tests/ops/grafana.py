"""What Grafana does to a PostgreSQL panel's SQL before it reaches the database, re-done in Python.

Two steps, as in Grafana:

1. the frontend's template service replaces variables (``$name``, ``${name}``, ``${name:format}``,
   ``[[name]]``) -- a single-valued variable of a SQL datasource is put in as it is -- and the
   built-ins ``$__interval`` / ``$__interval_ms``; names it does not know stay as they are;
2. the backend (pkg/tsdb/grafana-postgresql-datasource/macros.go and sqleng) expands the macros
   ``$__timeFilter(col)``, ``$__timeGroup(col, '5m')`` (``time_bucket('300.000s',col)`` when the
   datasource's TimescaleDB switch is on, else ``floor(extract(epoch from col)/300)*300``),
   ``$__timeGroupAlias``, ``$__timeFrom()``, ``$__timeTo()``, ``$__time``, ``$__timeEpoch``,
   ``$__unixEpochFilter`` / ``NanoFilter`` / ``Group`` / ``GroupAlias`` / ``From`` / ``To``; an
   unknown macro is an error, as there.

Not re-done: Grafana's fill modes (they change the result frames, not the SQL).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
NICE = ["1ms", "10ms", "20ms", "50ms", "100ms", "200ms", "500ms", "1s", "2s", "5s", "10s", "15s", "20s", "30s",
        "1m", "2m", "5m", "10m", "15m", "20m", "30m", "1h", "2h", "3h", "6h", "12h", "1d", "1w", "30d", "1y"]


def seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text.strip().strip("'"))
    if not m:
        raise ValueError(f"error parsing interval {text}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def interval_for(start: datetime, end: datetime, max_points: int = 1000) -> str:
    """Grafana's $__interval: the range over the panel's points, rounded up to a tidy interval."""
    raw = (end - start).total_seconds() / max_points
    return next((n for n in NICE if seconds(n) >= raw), NICE[-1])


def relative(expr: str, now: datetime) -> datetime:
    """``now``, ``now-6h``, ``now-7d`` (what the dashboards use)."""
    if expr == "now":
        return now
    m = re.fullmatch(r"now-(\d+)([smhdw])", expr)
    if not m:
        raise ValueError(f"unsupported relative time {expr!r}")
    return now - timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def _rfc3339nano(t: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros, none when zero."""
    t = t.astimezone(timezone.utc)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _format(value: str, fmt: str | None) -> str:
    if fmt in (None, "raw", "text", "csv", "pipe", "glob"):
        return value
    if fmt == "sqlstring":
        return "'" + value.replace("'", "''") + "'"
    if fmt == "singlequote":
        return "'" + value.replace("'", "\\'") + "'"
    if fmt == "doublequote":
        return '"' + value.replace('"', '\\"') + '"'
    raise ValueError(f"format {fmt!r} not handled by this re-implementation")


def variables(sql: str, values: dict[str, str], interval: str) -> str:
    """Step 1: the template service's replacement (single-valued variables)."""
    scoped = {**values, "__interval": interval, "__interval_ms": str(int(seconds(interval) * 1000))}

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name not in scoped:
            return m.group(0)
        return _format(scoped[name], fmt)
    return _VARIABLE.sub(repl, sql)


def macros(sql: str, start: datetime, end: datetime, *, timescaledb: bool, interval: str = "1m") -> str:
    """Step 2: the backend's macros (and sqleng's $__interval, $__interval_ms, $__unixEpochFrom/To())."""
    sql = sql.replace("$__interval_ms", str(int(seconds(interval) * 1000))).replace("$__interval", interval)
    sql = sql.replace("$__unixEpochFrom()", str(int(start.timestamp()))).replace(
        "$__unixEpochTo()", str(int(end.timestamp())))

    def group(args: list[str], epoch: bool = False) -> str:
        if len(args) < 2:
            raise ValueError("macro needs time column and interval and optional fill value")
        secs = seconds(args[1])
        n = f"{secs:g}" if secs != int(secs) else str(int(secs))
        if epoch:
            return f"floor(({args[0]})/{n})*{n}"
        if timescaledb:
            return f"time_bucket('{secs:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{n})*{n}"

    def evaluate(name: str, args: list[str]) -> str:
        need_col = name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter", "__unixEpochNanoFilter")
        if need_col and not args[0]:
            raise ValueError(f"missing time column argument for macro {name}")
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{_rfc3339nano(start)}' AND '{_rfc3339nano(end)}'"
        if name == "__timeFrom":
            return f"'{_rfc3339nano(start)}'"
        if name == "__timeTo":
            return f"'{_rfc3339nano(end)}'"
        if name == "__timeGroup":
            return group(args)
        if name == "__timeGroupAlias":
            return group(args) + ' AS "time"'
        if name == "__unixEpochFilter":
            return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
        if name == "__unixEpochNanoFilter":
            return (f"{args[0]} >= {int(start.timestamp() * 1e9)} AND {args[0]} <= {int(end.timestamp() * 1e9)}")
        if name == "__unixEpochNanoFrom":
            return str(int(start.timestamp() * 1e9))
        if name == "__unixEpochNanoTo":
            return str(int(end.timestamp() * 1e9))
        if name == "__unixEpochGroup":
            return group(args, epoch=True)
        if name == "__unixEpochGroupAlias":
            return group(args, epoch=True) + ' AS "time"'
        raise ValueError(f"unknown macro {name!r}")

    out, last = [], 0
    for m in _MACRO.finditer(sql):
        name = m.group(1)
        # Grafana: $__timeGroup directly followed by ',' is the pre-5.3 spelling of $__timeGroupAlias
        if name == "__timeGroup" and sql[m.end():m.end() + 1] == ",":
            name = "__timeGroupAlias"
        out.append(sql[last:m.start()])
        out.append(evaluate(name, [a.strip() for a in m.group(2).split(",")]))
        last = m.end()
    out.append(sql[last:])
    return "".join(out)


def expand(sql: str, values: dict[str, str], start: datetime, end: datetime, *, timescaledb: bool) -> str:
    interval = interval_for(start, end)
    return macros(variables(sql, values, interval), start, end, timescaledb=timescaledb, interval=interval)
