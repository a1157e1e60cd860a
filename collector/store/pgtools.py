"""PostgreSQL's client programs (pg_dump, pg_restore) for a given server, and what they are handed.

* :func:`program` picks the one of the server's major version (pg_dump refuses a newer server, and an
  older pg_restore cannot read a newer archive): ``PG_BINDIR``, then ``/usr/lib/postgresql/N/bin``
  (Debian's layout, newest first), then ``PATH``; the exact major wins, else the nearest newer one.
* :func:`child_connection` turns a DATABASE_URL into a libpq string without the password and an
  environment carrying it (``PGPASSWORD``): a password never reaches a command line (``ps`` shows
  those to every user of the machine) or a log line.
* :func:`user_objects` says whether a database is empty: what exists in it beyond what PostgreSQL and
  its extensions bring.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import psycopg
from psycopg import conninfo

from collector.config import process_environment
from collector.errors import CollectorError

DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)")


class ToolMissing(CollectorError, RuntimeError):
    """No usable pg_dump / pg_restore for this server."""


@dataclass(frozen=True)
class Program:
    path: str
    major: int


def _major_of(path: str) -> int | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    m = _VERSION_RE.search(out)
    return int(m.group(1)) if m else None


def _candidates(name: str, bindir: Path | None) -> list[str]:
    out: list[str] = []
    if bindir is not None:
        out.append(str(bindir / name))
    if DEBIAN_BINDIRS.is_dir():
        dirs = [d for d in DEBIAN_BINDIRS.iterdir() if d.name.isdigit()]
        out.extend(str(d / "bin" / name) for d in sorted(dirs, key=lambda d: -int(d.name)))
    found = shutil.which(name)
    if found:
        out.append(found)
    return [p for p in dict.fromkeys(out) if os.access(p, os.X_OK)]   # in order, once each


def program(name: str, server_major: int, bindir: Path | None = None) -> Program:
    """The ``name`` (pg_dump, pg_restore) for a server of ``server_major``: the same major, else the
    nearest newer one; never an older one (it cannot read what the server has)."""
    found = [(p, m) for p in _candidates(name, bindir) if (m := _major_of(p)) is not None]
    same = [Program(p, m) for p, m in found if m == server_major]
    if same:
        return same[0]
    newer = sorted((Program(p, m) for p, m in found if m > server_major), key=lambda prog: prog.major)
    if newer:
        return newer[0]
    have = ", ".join(f"{p} ({m})" for p, m in found) or "none"
    raise ToolMissing(f"no {name} for PostgreSQL {server_major} (found: {have}): install "
                      f"postgresql-client-{server_major}, or set PG_BINDIR to the bin/ directory holding it")


def child_connection(dsn: str, env: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """``(libpq string without the password, environment for the child)`` of a DATABASE_URL."""
    params = conninfo.conninfo_to_dict(dsn)
    password = params.pop("password", None)
    child = dict(process_environment() if env is None else env)
    if password is not None:
        child["PGPASSWORD"] = str(password)
    params.setdefault("application_name", "deribit-collector-backup")
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), child


def redacted(dsn: str) -> str:
    """A DATABASE_URL fit for a log line: the password replaced."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DATABASE_URL>"
    if "password" in params:
        params["password"] = "***"
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


# What a database holds beyond PostgreSQL's own schemas and what extensions brought (their members,
# and the indexes and TOAST tables of those): relations, functions and schemas of someone's making.
_USER_OBJECTS = """
WITH ext AS (SELECT objid, classid FROM pg_depend WHERE deptype = 'e'),
sys AS (SELECT oid FROM pg_namespace
        WHERE nspname IN ('pg_catalog', 'information_schema') OR nspname LIKE 'pg\\_toast%'
           OR nspname LIKE 'pg\\_temp\\_%')
SELECT 'relation ' || c.oid::regclass::text FROM pg_class c
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND c.relnamespace NOT IN (SELECT oid FROM sys)
  AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
  AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_namespace'::regclass AND ext.objid = c.relnamespace)
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
WHERE p.pronamespace NOT IN (SELECT oid FROM sys)
  AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)
  AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_namespace'::regclass AND ext.objid = p.pronamespace)
UNION ALL
SELECT 'schema ' || quote_ident(n.nspname) FROM pg_namespace n
WHERE n.oid NOT IN (SELECT oid FROM sys) AND n.nspname <> 'public'
  AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_namespace'::regclass AND ext.objid = n.oid)
ORDER BY 1
"""


def user_objects(conn: psycopg.Connection) -> list[str]:
    """What makes a database non-empty (e.g. ``relation index_prices``); [] for an empty one."""
    return [r[0] for r in conn.execute(_USER_OBJECTS)]
