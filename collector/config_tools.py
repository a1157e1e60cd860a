"""`collector config`: what the settings are and where each came from, the Docker setup's `.env` turned into
ours, and the systemd timers' cadences written from the settings.

* :func:`check`: every effective setting, its value (passwords hidden) and its source: a CLI option, our
  variable, the Docker setup's name for it (``LOG_LEVEL``, ``TOP_N_INSTRUMENTS``, ``REST_GREEKS_INTERVAL``)
  or the default. A bad value raises :class:`ConfigError` (one line, exit 2), like every command.
* :func:`read_env_file`: ``KEY=VALUE`` lines as docker compose and systemd's ``EnvironmentFile=`` read them
  (``export``, quotes, ``#`` comments; an inline `` # comment`` after an unquoted value, which compose
  drops and systemd would keep, is dropped).
* :func:`from_env`: their ``.env`` -> our ``collector.env`` and the inventory variables of the playbook.
* :func:`timer_dropins` / :func:`write_timers`: ``OnCalendar=`` drop-ins of ``rest-collector.timer``,
  ``greeks.timer`` and ``funding.timer`` from ``REST_*_INTERVAL``, ``GREEKS_INTERVAL`` and
  ``FUNDING_INTERVAL``: under systemd the same cadences as ``run-all`` follows (the playbook runs it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from collector.config import TABLE, TABLE_BY_NAME, ConfigError, Settings, given_by
from collector.config_values import on_calendar, redact, validate_currency

_LINE_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_TOP_N_RE = re.compile(r"^WS_([A-Z0-9]{1,16})_TOP_N_INSTRUMENTS$")
_SECRET_RE = re.compile(r"PASSWORD|SECRET|TOKEN|WEBHOOK", re.I)
# The Docker setup's compose service of the database: a URL naming it works only inside compose.
COMPOSE_DB_HOSTS = ("timescaledb", "db", "postgres")
# Their variables that mean nothing here, and why (from-env says so instead of dropping them silently).
NOT_CARRIED = {
    "CURRENCY": "one container per currency there; here COLLECTOR_CURRENCIES lists them all",
    "POSTGRES_PASSWORD": "the Docker database's own password: not ours (the playbook makes our roles)",
    "POSTGRES_USER": "the Docker database's own user", "POSTGRES_DB": "the Docker database's own name",
    "PERPETUAL_INTERVAL": "compose's copy of REST_PERPETUAL_INTERVAL",
    "FUTURES_INTERVAL": "compose's copy of REST_FUTURES_INTERVAL",
    "OPTIONS_OHLCV_INTERVAL": "compose's copy of REST_OPTIONS_OHLCV_INTERVAL",
}


class EnvFileError(ConfigError):
    pass


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a ``.env`` / ``EnvironmentFile=``; a line that is none of those is an error."""
    out: dict[str, str] = {}
    for n, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE_RE.match(line)
        if m is None:
            raise EnvFileError(f"{path}:{n}", line[:80], "KEY=VALUE lines, # comments and blank lines only")
        key, value = m.group(1), m.group(2).strip()
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            if end < 0:
                raise EnvFileError(f"{path}:{n}", line[:80], "a quoted value closed on the same line")
            value = value[1:end]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        out[key] = value
    return out


@dataclass(frozen=True)
class Line:
    variable: str      # our name (per-currency ones spelled out)
    value: str         # as a user would write it; secrets hidden
    source: str        # "default", "env VAR", "env ALIAS (the Docker setup's name)", "option --flag"


def _shown(row_env: str, text: str) -> str:
    if row_env == "DATABASE_URL":
        return redact(text)
    return "***" if _SECRET_RE.search(row_env) and text not in ("", "—") else text


def check(env: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> tuple[list[Line], list[str]]:
    """Every effective setting (validated: a bad one raises) with its source, and notes for a person."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    settings = Settings.load(env=env, **overrides)
    lines, notes = [], []
    for row in TABLE:
        given = given_by(row, env, overrides)
        if given is None:
            source = "default"
        elif given[0] == row.cli_name and row.name in overrides:
            source = f"option {row.cli_name}"
        elif given[0] == row.env:
            source = f"env {row.env}"
        else:
            source = f"env {given[0]} (the Docker setup's name for {row.env})"
        value = getattr(settings, row.name)
        lines.append(Line(row.env, _shown(row.env, row.kind.show(value) if value is not None else "—"), source))
        if row.per_currency:
            for cur in settings.currencies:
                var = row.env_for(cur)
                src = f"env {var}" if cur in settings.ws_top_n and env.get(var, "") != "" else (
                    "option " + row.cli_name if cur in settings.ws_top_n else f"as {row.env}")
                lines.append(Line(var, row.kind.show(settings.top_n(cur)), src))
    if settings.database_url:
        host = _url_host(settings.database_url)
        if host in COMPOSE_DB_HOSTS:
            notes.append(f"DATABASE_URL names the host {host!r}: a docker compose service name, which resolves only "
                         "inside compose. Here the database is local (the playbook's), e.g. postgresql:///collector; "
                         "import the old one with `collector db import-legacy --from <its URL on localhost>`.")
    for name in sorted(set(env) & set(NOT_CARRIED)):
        notes.append(f"{name} is not used here: {NOT_CARRIED[name]}.")
    return lines, notes


def _url_host(url: str) -> str:
    if "://" not in url:
        m = re.search(r"(?:^|\s)host\s*=\s*(\S+)", url)
        return m.group(1) if m else ""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def format_check(lines: list[Line], notes: list[str]) -> str:
    w1 = max(len(x.variable) for x in lines)
    w2 = min(max(len(x.value) for x in lines), 48)
    out = [f"{'variable':<{w1}}  {'value':<{w2}}  from", f"{'-' * w1}  {'-' * w2}  ----"]
    out += [f"{x.variable:<{w1}}  {x.value:<{w2}}  {x.source}" for x in lines]
    out += [f"note: {n}" for n in notes]
    return "\n".join(out)


# -- their .env -> ours ---------------------------------------------------------------------------

@dataclass
class Converted:
    env: dict[str, str]                 # collector.env: our variable -> value
    inventory: dict[str, Any]           # the playbook's variables
    notes: list[str]                    # what was not carried over, and why
    legacy_database_url: str | None     # their database, for `collector db import-legacy --from`


def from_env(theirs: Mapping[str, str]) -> Converted:
    """Their variables in our names (every value validated as ours would be: a bad one raises)."""
    by_alias = {a: row for row in TABLE for a in row.aliases}
    by_env = {row.env: row for row in TABLE}
    env: dict[str, str] = {}
    inventory: dict[str, Any] = {}
    notes: list[str] = []
    legacy_url = None
    top_n: dict[str, int] = {}
    currencies: list[str] = []
    for key in sorted(theirs):
        value = theirs[key]
        if value == "":
            continue
        m = _TOP_N_RE.match(key)
        if m:
            cur = validate_currency(m.group(1), key)
            top_n[cur] = TABLE_BY_NAME["ws_top_n_default"].kind(key, value)
            currencies.append(cur)
            continue
        if key == "CURRENCY":
            currencies.append(validate_currency(value.upper(), key))
            notes.append(f"CURRENCY={value}: {NOT_CARRIED['CURRENCY']} ({value.upper()} is in it).")
            continue
        if key == "DATABASE_URL":
            if _url_host(value) in COMPOSE_DB_HOSTS:
                legacy_url = value
                notes.append(f"DATABASE_URL={redact(value)} is the Docker database (host {_url_host(value)!r}): not "
                             "ours; import it with `collector db import-legacy --from` (the host as seen from here).")
                continue
            inventory["collector_database_url"] = value
        row = by_env.get(key) or by_alias.get(key)
        if row is None:
            notes.append(f"{key} is not carried over: " + NOT_CARRIED.get(key, "not a setting of ours (README: Configuration)")
                         + ".")
            continue
        checked = row.kind(key, value)
        env[row.env] = row.kind.show(checked) if not isinstance(checked, (str,)) else checked
        if row.env != key:
            notes.append(f"{key} -> {row.env}")
    if currencies:
        known = list(Settings.load(env={}).currencies)
        cur_list = known + [c for c in dict.fromkeys(currencies) if c not in known]
        env.setdefault("COLLECTOR_CURRENCIES", ",".join(cur_list))
    for cur, n in top_n.items():
        env[f"WS_{cur}_TOP_N_INSTRUMENTS"] = str(n)
    Settings.load(env=env)   # the result is valid as a whole (e.g. WS_BACKOFF_MAX >= WS_BACKOFF_INITIAL)
    if "COLLECTOR_CURRENCIES" in env:
        inventory["collector_currencies"] = env["COLLECTOR_CURRENCIES"].split(",")
    if top_n:
        inventory["collector_ws_top_n"] = dict(sorted(top_n.items()))
    if "COLLECTOR_LOG_LEVEL" in env:
        inventory["collector_log_level"] = env["COLLECTOR_LOG_LEVEL"]
    rest = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "COLLECTOR_CURRENCIES", "COLLECTOR_LOG_LEVEL")
            and not _TOP_N_RE.match(k)}
    if rest:
        inventory["collector_env"] = dict(sorted(rest.items()))
    return Converted(env=env, inventory=inventory, notes=notes, legacy_database_url=legacy_url)


def env_text(conv: Converted) -> str:
    lines = ["# collector.env, from the Docker setup's .env by `collector config from-env` (README: Configuration)"]
    order = {row.env: i for i, row in enumerate(TABLE)}
    lines += [f"{k}={v}" for k, v in sorted(conv.env.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))]
    if conv.legacy_database_url:
        lines.append(f"# the Docker database, to import: collector db import-legacy --from '{redact(conv.legacy_database_url)}'")
    return "\n".join(lines) + "\n"


def inventory_text(conv: Converted) -> str:
    """The inventory's ``vars:`` (YAML; each value written as JSON, which YAML reads as it is)."""
    lines = ["# inventory vars, from the Docker setup's .env by `collector config from-env`"]
    lines += [f"{k}: {json.dumps(v)}" for k, v in conv.inventory.items()]
    return "\n".join(lines) + "\n"


# -- the timers -------------------------------------------------------------------------------------

DROPIN = "50-collector-cadence.conf"


def timer_dropins(settings: Settings) -> dict[str, str]:
    """``{"<timer>.d/<file>": text}`` for the timers whose cadence is a setting."""
    rest = min(settings.rest_perpetual_interval_s, settings.rest_futures_interval_s,
               settings.rest_options_ohlcv_interval_s)
    cadences = [
        ("rest-collector.timer", rest, 0, "the shortest of REST_PERPETUAL_INTERVAL, REST_FUTURES_INTERVAL, "
         "REST_OPTIONS_OHLCV_INTERVAL (each kind is fetched when it is due)"),
        ("greeks.timer", settings.greeks_interval_s, 0, "GREEKS_INTERVAL"),
        ("funding.timer", settings.funding_interval_s, 1, "FUNDING_INTERVAL (a minute after the funding times)"),
    ]
    out = {}
    for timer, seconds, minute, why in cadences:
        out[f"{timer}.d/{DROPIN}"] = (
            f"# Written by `collector config timers` from {why}: do not edit, set the variable in collector.env.\n"
            f"[Timer]\nOnCalendar=\nOnCalendar={on_calendar(seconds, minute)}\n")
    return out


def write_timers(settings: Settings, directory: Path) -> list[str]:
    """Write the drop-ins under ``directory`` (e.g. /etc/systemd/system); returns the ones that changed."""
    changed = []
    for rel, text in timer_dropins(settings).items():
        path = Path(directory) / rel
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        changed.append(str(path))
    return changed
