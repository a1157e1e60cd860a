"""One validated Settings object, built once from the environment and CLI options.

This module is the only reader of ``os.environ`` in the package. :class:`Settings` is the table of
settings (see :mod:`collector.config_table`): every value is checked by its kind
(:mod:`collector.config_values`); a bad value raises :class:`ConfigError` whose text is one line naming
the variable, the bad value and what is allowed. The CLI turns that into exit code 2.

What systemd tells a service (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``, ``WATCHDOG_PID``,
``STATE_DIRECTORY``) is not a user's setting: it is read into :class:`SystemdEnv`, never an error.

``python -m collector.config --markdown`` prints the README's configuration table.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from collector.config_table import Setting, markdown, rows, setting
from collector.config_values import (  # noqa: F401 - re-exported: the package imports them from here
    Cadence, Choice, ConfigError, Currencies, DatabaseUrl, Directory, Duration, Flag, Int, Size, Url, format_duration,
    parse_duration, parse_size, validate_currency,
)
from collector.config_values import Limits, SecretUrl, Text, Word, limit_for  # noqa: F401 - health and alerts

DEFAULT_WS_URL = "wss://www.deribit.com/ws/api/v2"
DEFAULT_REST_URL = "https://www.deribit.com/api/v2"

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_REST_COMMANDS = ("ws", "rest", "depth", "greeks", "funding", "run-all")


@dataclass(frozen=True)
class SystemdEnv:
    """What systemd hands a service in its environment. Nonsense here means "not under systemd"."""

    notify_socket: str = ""               # NOTIFY_SOCKET: a path, or @name (abstract namespace)
    watchdog_usec: int | None = None      # WATCHDOG_USEC, when a positive integer
    watchdog_pid: str = ""                # WATCHDOG_PID: the watchdog is for this process only
    state_directory: str = ""             # STATE_DIRECTORY (StateDirectory=): the first of its paths
    runtime_directory: str = ""           # RUNTIME_DIRECTORY (RuntimeDirectory=): the first of its paths

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> "SystemdEnv":
        env = os.environ if env is None else env
        usec = env.get("WATCHDOG_USEC", "")
        return cls(notify_socket=env.get("NOTIFY_SOCKET", ""),
                   watchdog_usec=int(usec) if usec.isdigit() and int(usec) > 0 else None,
                   watchdog_pid=env.get("WATCHDOG_PID", ""),
                   state_directory=env.get("STATE_DIRECTORY", "").split(":")[0],
                   runtime_directory=env.get("RUNTIME_DIRECTORY", "").split(":")[0])


def process_environment() -> dict[str, str]:
    """A copy of this process's environment, for a launcher (``bin/run``) that hands it to its children."""
    return dict(os.environ)


@dataclass(frozen=True)
class Settings:
    """Everything the jobs need, validated. Build it with :meth:`load`. Each field declared with
    ``setting(...)`` is a row of the configuration table, in the order the README lists them."""

    # -- where from, where to
    database_url: str | None = setting(
        None, "DATABASE_URL", DatabaseUrl(), "the database, e.g. postgresql://collector@localhost/collector",
        option="--database-url", commands=("",))
    ws_url: str = setting(
        DEFAULT_WS_URL, "DERIBIT_WS_URL", Url(("ws", "wss")),
        "Deribit WebSocket URL; point it at `collector sim` for tests and demos",
        option="--ws-url", commands=("ws", "run-all"))
    rest_url: str = setting(
        DEFAULT_REST_URL, "DERIBIT_REST_URL", Url(("http", "https"), strip_slash=True),
        "Deribit REST URL: the REST jobs, the stream's backfills and instrument list",
        option="--rest-url", commands=_REST_COMMANDS)
    currencies: tuple[str, ...] = setting(
        ("BTC", "ETH"), "COLLECTOR_CURRENCIES", Currencies(), "the currencies recorded",
        option="--currencies", commands=("",))
    log_level: str = setting(
        "INFO", "COLLECTOR_LOG_LEVEL", Choice(_LOG_LEVELS),
        "the log level; logs are JSON lines on stderr with a stable `event` key", option="--log-level", commands=("",),
        aliases=("LOG_LEVEL",))
    # -- the store's batch writer
    spool_dir: Path = setting(
        Path("spool"), "COLLECTOR_SPOOL_DIR", Directory(), "where batches wait while the database is away",
        shown_default="`$STATE_DIRECTORY/spool` under systemd, else `./spool`")
    spool_max_bytes: int = setting(
        2 * 1024**3, "COLLECTOR_SPOOL_MAX_BYTES", Size(),
        "the spool's bound: when the queue and the spool are both full, rows are dropped loudly: error log, "
        "`collector_status.rows_dropped`, a `data_gaps` row")
    batch_rows: int = setting(
        5000, "COLLECTOR_BATCH_ROWS", Int(1, 1_000_000), "a batch is written when it has this many rows…")
    batch_max_age_s: float = setting(
        1.0, "COLLECTOR_BATCH_MAX_AGE", Duration(minimum=0.001), "… or when its oldest row is this old")
    queue_max_rows: int = setting(
        200_000, "COLLECTOR_QUEUE_MAX_ROWS", Int(1, 100_000_000),
        "the in-memory bound of a job's queue; beyond it the oldest rows go to the spool")
    # -- the stream (`collector ws`)
    ws_top_n: Mapping[str, int] = field(default_factory=dict)   # per currency, from WS_{CUR}_TOP_N_INSTRUMENTS
    ws_top_n_default: int = setting(
        50, "WS_TOP_N_INSTRUMENTS", Int(0), "options streamed per currency, by open interest; 0 = the whole chain",
        option="--top-n", commands=("ws",), per_currency="WS_{CUR}_TOP_N_INSTRUMENTS", aliases=("TOP_N_INSTRUMENTS",))
    ws_heartbeat_s: int = setting(
        10, "WS_HEARTBEAT", Duration(minimum=10, whole=True),
        "Deribit's heartbeat interval; a connection silent for 3 of them is dropped and made again", group="ws")
    ws_progress_window_s: float = setting(
        0.0, "WS_PROGRESS_WINDOW", Duration(),
        "no frame or no write for this long stops WATCHDOG=1 (systemd then restarts the unit); "
        "0 = 3 heartbeats + 5 s, at least 30 s", group="ws")
    ws_reconcile_every_s: float = setting(
        300.0, "WS_RECONCILE_EVERY", Duration(minimum=1), "how often the instrument list is fetched again "
        "(listings and expiries also arrive on the stream)", group="ws")
    ws_trades_reconcile_every_s: float = setting(
        300.0, "WS_TRADES_RECONCILE_EVERY", Duration(minimum=0.1), "how often the newest option trades are "
        "fetched over REST and compared with the last `trade_seq` of each instrument (a last trade that never "
        "arrived is then backfilled)", group="ws")
    ws_rerank_every_s: float = setting(
        900.0, "WS_RERANK_EVERY", Duration(minimum=1), "how often the top-N options are ranked again by open "
        "interest", group="ws")
    ws_status_every_s: float = setting(
        5.0, "WS_STATUS_EVERY", Duration(minimum=0.1), "how often collector_status and the unit's STATUS= are "
        "updated; the watchdog is petted at least this often", group="ws")
    ws_book_snapshot_every_s: float = setting(
        60.0, "WS_BOOK_SNAPSHOT_EVERY", Duration(minimum=0.1), "a top-N snapshot of a streamed book is stored every "
        "this much exchange time", group="ws")
    ws_perpetual_book: bool = setting(
        True, "WS_PERPETUAL_BOOK", Flag(), "stream the perpetual's order book (for its depth snapshots)", group="ws")
    ws_backfill_horizon_s: float = setting(
        86400.0, "WS_BACKFILL_HORIZON", Duration(), "how far back the option trades missed while down "
        "(a restart, a disconnect) are fetched over REST", group="ws")
    ws_startup_replay_s: float = setting(
        20.0, "WS_STARTUP_REPLAY", Duration(), "at start, the spool is replayed for at most this long "
        "before streaming", group="ws")
    ws_backoff_initial_s: float = setting(
        1.0, "WS_BACKOFF_INITIAL", Duration(minimum=0.01), "the first reconnect delay; it doubles per failed "
        "attempt (with jitter)…", group="ws")
    ws_backoff_max_s: float = setting(
        60.0, "WS_BACKOFF_MAX", Duration(minimum=0.01), "… up to this (at least WS_BACKOFF_INITIAL)", group="ws")
    ws_stop_timeout_s: float = setting(
        8.0, "WS_STOP_TIMEOUT", Duration(), "on SIGTERM, pending rows are written for at most this "
        "long; the rest goes to the spool", group="ws")
    # -- the REST jobs
    depth_top_n: int = setting(
        20, "DEPTH_TOP_N", Int(1, 10_000), "book levels per side in depth snapshots", option="--top-n",
        commands=("depth",))
    depth_options_top_n: int = setting(
        0, "DEPTH_OPTIONS_TOP_N", Int(0), "options per currency in depth snapshots, by open interest; 0 = all",
        option="--options-top-n", commands=("depth",))
    ohlcv_catchup_horizon_s: float = setting(
        7 * 86400.0, "OHLCV_CATCHUP_HORIZON", Duration(minimum=60), "how far back `collector rest` fills "
        "missing candles")
    funding_catchup_horizon_s: float = setting(
        30 * 86400.0, "FUNDING_CATCHUP_HORIZON", Duration(minimum=60), "how far back `collector funding` fills "
        "missing funding rates")
    greeks_interval_s: float = setting(
        3600.0, "GREEKS_INTERVAL", Cadence(), "how often the greeks are taken (`run-all`; under systemd "
        "greeks.timer, from `collector config timers`)", aliases=("REST_GREEKS_INTERVAL",))
    rest_perpetual_interval_s: float = setting(
        60.0, "REST_PERPETUAL_INTERVAL", Cadence(), "how often the perpetuals' 1-min candles are fetched (missed "
        "minutes are caught up); the rest pass runs at the shortest of the three REST_* intervals")
    rest_futures_interval_s: float = setting(
        60.0, "REST_FUTURES_INTERVAL", Cadence(), "how often the dated futures' 1-min candles are fetched "
        "(caught up likewise)")
    rest_options_ohlcv_interval_s: float = setting(
        60.0, "REST_OPTIONS_OHLCV_INTERVAL", Cadence(), "how often the option chain's 1-min row (options_ohlcv) is "
        "taken: a snapshot of the minute that just closed, on the UTC multiples of this interval")
    funding_interval_s: float = setting(
        8 * 3600.0, "FUNDING_INTERVAL", Cadence(), "how often funding rates are fetched (history since the newest "
        "stored row: nothing is missed at any interval)")
    rest_timeout_s: float = setting(
        10.0, "REST_TIMEOUT", Duration(minimum=0.1), "timeout of one Deribit REST request")
    runtime_dir: Path = setting(
        Path("/run/collector"), "COLLECTOR_RUNTIME_DIR", Directory(), "where the processes of a host share one "
        "Deribit credit budget (a small locked file per REST endpoint)",
        shown_default="`$RUNTIME_DIRECTORY`, else `/run/collector`; a per-user temp directory when not writable")
    shared_credit_budget: bool = setting(
        True, "DERIBIT_SHARED_BUDGET", Flag(), "share that credit budget between the jobs of this host; no = each "
        "process has its own (together they can then exceed Deribit's limit)")
    # -- backups (`collector db backup`, collector-backup.timer)
    backup_dir: Path = setting(
        Path("/var/backups/collector"), "COLLECTOR_BACKUP_DIR", Directory(),
        "where `collector db backup` writes its pg_dump files (`--dir`)")
    backup_keep: int = setting(
        7, "COLLECTOR_BACKUP_KEEP", Int(1, 10_000), "backups kept in that directory (the newest); older ones "
        "are deleted after a successful backup (`--keep`)")
    backup_database_url: str | None = setting(
        None, "COLLECTOR_BACKUP_DATABASE_URL", DatabaseUrl(), "the database `collector db backup` dumps, as a role "
        "that can read every relation (the owner)", shown_default="`DATABASE_URL`")
    # -- health (`collector db status`, collector-monitor.timer, run-all) and alerts
    max_age: tuple[tuple[str, float], ...] = setting(
        (("", 900.0), ("*_quotes", 300.0), ("*_trades", 300.0), ("funding_rates", 9 * 3600.0),
         ("options_greeks", 2 * 3600.0)), "COLLECTOR_MAX_AGE", Limits(),
        "how old each relation's newest row may be before the health check fails (`--max-age` replaces it)")
    max_gap: tuple[tuple[str, float], ...] = setting(
        (("", 300.0),), "COLLECTOR_MAX_GAP", Limits(), "the longest hole allowed between consecutive rows of "
        "tick data (`*_quotes`, `*_trades`) in the last 24 h")
    disk_max_used_pct: int = setting(
        80, "COLLECTOR_DISK_MAX_USED", Int(1, 100), "the health check fails when the filesystem of the database "
        "or of the spool is fuller than this (percent)")
    monitor_every_s: float = setting(
        300.0, "COLLECTOR_MONITOR_EVERY", Duration(minimum=10), "how often `run-all` checks health (under systemd: "
        "collector-monitor.timer)")
    alert_webhook: str | None = setting(
        None, "COLLECTOR_ALERT_WEBHOOK", SecretUrl(), "alerts are POSTed here as JSON (it may hold a token: only "
        "its host is ever logged)")
    alert_format: str = setting(
        "json", "COLLECTOR_ALERT_FORMAT", Word(("ntfy", "slack", "telegram", "json")), "the webhook's JSON: ntfy, "
        "slack (Slack/Discord: `text`/`content`), telegram (bot sendMessage) or json (every field)")
    alert_telegram_chat: str = setting(
        "", "COLLECTOR_ALERT_TELEGRAM_CHAT", Text(), "the chat_id of the telegram format")
    alert_email: str = setting(
        "", "COLLECTOR_ALERT_EMAIL", Text(), "alerts are also mailed to these addresses (comma-separated) through "
        "the host's `sendmail -t`")
    alert_repeat_s: float = setting(
        6 * 3600.0, "COLLECTOR_ALERT_REPEAT_SECONDS", Duration(), "the same failure is not sent again for this long")
    alert_state_dir: Path = setting(
        Path("."), "COLLECTOR_ALERT_STATE_DIR", Directory(), "where the alerts' state (`alert-state.json`: what "
        "was sent when) is kept", shown_default="`$STATE_DIRECTORY` under systemd, else `.`")
    # -- bin/run and the benchmarks
    pg_bindir: Path | None = setting(
        None, "PG_BINDIR", Directory(), "the PostgreSQL server programs for a cluster of bin/run's own",
        shown_default="the newest `/usr/lib/postgresql/N/bin`, else `pg_ctl` on PATH")
    # -- from systemd, not a row of the table
    systemd: SystemdEnv = field(default_factory=SystemdEnv)

    def top_n(self, currency: str) -> int:
        return self.ws_top_n.get(currency, self.ws_top_n_default)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("DATABASE_URL", "", "set it (or --database-url) to a PostgreSQL URL, "
                              "e.g. postgresql://collector@localhost/collector")
        return self.database_url

    def ws_options(self) -> dict[str, Any]:
        """The stream's knobs, as keyword arguments of ``collector.jobs.ws.WsOptions``."""
        return {row.name.removeprefix("ws_"): getattr(self, row.name) for row in TABLE if row.group == "ws"}

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build from ``env`` (default: ``os.environ``) then apply non-None CLI ``overrides``.

        Overrides use the field names (``database_url=...``); they win over the environment.
        ``ws_top_n={CUR: n}`` wins over ``WS_{CUR}_TOP_N_INSTRUMENTS``.
        """
        env = os.environ if env is None else env
        unknown = set(overrides) - set(TABLE_BY_NAME) - {"ws_top_n"}
        if unknown:
            raise TypeError(f"Settings.load: no such setting: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for row in TABLE:
            given = given_by(row, env, overrides)
            if given is not None:
                values[row.name] = row.kind(given[0], given[1])

        systemd = SystemdEnv.load(env)
        if "spool_dir" not in values:
            values["spool_dir"] = Path(systemd.state_directory) / "spool" if systemd.state_directory else Path("spool")
        if "runtime_dir" not in values and systemd.runtime_directory:
            values["runtime_dir"] = Path(systemd.runtime_directory)
        if "alert_state_dir" not in values and systemd.state_directory:
            values["alert_state_dir"] = Path(systemd.state_directory)

        top_row = TABLE_BY_NAME["ws_top_n_default"]
        top: dict[str, int] = {}
        for cur in values.get("currencies", cls.currencies):
            var = top_row.env_for(cur)
            if env.get(var, "") != "":
                top[cur] = top_row.kind(var, env[var])
        for cur, n in (overrides.get("ws_top_n") or {}).items():
            top[validate_currency(cur)] = top_row.kind(top_row.cli_name, n)

        settings = replace(cls(), **values, ws_top_n=top, systemd=systemd)
        if settings.ws_backoff_max_s < settings.ws_backoff_initial_s:   # name the one that was set
            low, high = format_duration(settings.ws_backoff_initial_s), format_duration(settings.ws_backoff_max_s)
            if "ws_backoff_max_s" in values:
                raise ConfigError("WS_BACKOFF_MAX", high, f"at least WS_BACKOFF_INITIAL ({low})")
            raise ConfigError("WS_BACKOFF_INITIAL", low, f"at most WS_BACKOFF_MAX ({high})")
        return settings


TABLE: tuple[Setting, ...] = rows(Settings)
TABLE_BY_NAME: dict[str, Setting] = {row.name: row for row in TABLE}


def given_by(row: Setting, env: Mapping[str, str], overrides: Mapping[str, Any]) -> tuple[str, Any] | None:
    """Where ``row``'s value comes from, as ``(name, raw value)``: its CLI option, else its variable, else
    the first alias that is set (the Docker setup's names); None: the default."""
    if overrides.get(row.name) is not None:
        return row.cli_name, overrides[row.name]
    var = next((v for v in (row.env, *row.aliases) if env.get(v, "") != ""), None)
    return (var, env[var]) if var is not None else None


def setting_from(env: Mapping[str, str], name: str) -> Any:
    """One setting from ``env``, validated, or its default when unset: for a program that needs one value
    and hands the rest of the environment on (``bin/run``: ``PG_BINDIR``)."""
    row = TABLE_BY_NAME[name]
    given = given_by(row, env, {})
    return row.kind(*given) if given is not None else row.default


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--markdown"]:
        print("usage: python -m collector.config --markdown   (prints the README's configuration table)",
              file=sys.stderr)
        return 2
    print(markdown(TABLE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
