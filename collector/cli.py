"""The `collector` command: one subcommand per job. Parses options, builds Settings, calls a job.

No logic lives here. A configuration error exits 2 with one line naming the variable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from collector import __version__, log
from collector.config import TABLE, ConfigError, Int, Settings
from collector.sim.cli import sim

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Turns a ConfigError anywhere below into ``collector: error: ...`` and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as err:
            click.echo(f"collector: error: {err}", err=True)
            sys.exit(2)


def _table_options(command: str):
    """The options of the settings the table offers on ``command`` ("" is `collector` itself), in the
    table's order; each is passed on under its Settings name."""
    rows = [row for row in TABLE if command in row.commands]

    def decorate(fn):
        for row in reversed(rows):
            assert row.option is not None  # a row offered on a command has a flag
            fn = click.option(row.option, row.name, metavar=row.kind.metavar,
                              type=int if isinstance(row.kind, Int) else None, help=row.cli_help())(fn)
        return fn
    return decorate


def _settings(ctx: click.Context, **overrides) -> Settings:
    base = ctx.find_root().obj or {}
    settings = Settings.load(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
    log.setup(settings.log_level)
    return settings


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="collector")
@_table_options("")
@click.pass_context
def main(ctx: click.Context, **options) -> None:
    """Record Deribit market data into TimescaleDB / PostgreSQL.

    Every option can also be set in the environment (under systemd: /etc/collector/collector.env), and
    more settings only there (README.md, "Configuration"). Logs are JSON lines on stderr.
    """
    ctx.obj = options


@main.group(context_settings=CONTEXT)
def db() -> None:
    """Database schema, health and backups: migrate, status, backup, restore, import-legacy."""


@db.command("migrate")
@click.option("--dry-run", is_flag=True, help="Only list the migrations that would be applied.")
@click.pass_context
def db_migrate(ctx: click.Context, dry_run: bool) -> None:
    """Apply the missing SQL migrations, in order, under an advisory lock.

    Each applied file is recorded with its checksum; a changed applied file stops the run. A second
    run does nothing. Also creates the per-currency views for every configured currency.
    """
    from collector.jobs import dbadmin

    settings = _settings(ctx)
    sys.exit(dbadmin.migrate(settings, dry_run=dry_run))


@db.command("import-legacy")
@click.option("--from", "source", required=True, metavar="DSN",
              help="The Docker collector's database, e.g. postgresql://postgres:PASSWORD@HOST:5432/crypto_data (only read).")
@click.option("--dry-run", is_flag=True, help="Only list what would be imported, with row counts (estimates).")
@click.option("--exact", is_flag=True, help="With --dry-run: exact row counts (count(*); slow on big tables).")
@click.option("--tables", multiple=True, metavar="NAME[,NAME...]", help="Only these source tables. Repeatable.")
@click.option("--full", is_flag=True, help="Read every table from its start again (saved positions ignored; "
                                           "what is already stored is skipped).")
@click.option("--jobs", type=click.IntRange(1, 16), default=2, show_default=True,
              help="A big table is copied as this many time ranges at once (connections to each database).")
@click.option("--batch-rows", type=click.IntRange(1), default=50_000, hidden=True)
@click.option("--kill-after-batches", type=click.IntRange(0), hidden=True)  # tests: SIGKILL mid-batch
@click.pass_context
def db_import_legacy(ctx: click.Context, source: str, dry_run: bool, exact: bool, tables: tuple[str, ...],
                     full: bool, jobs: int, batch_rows: int, kill_after_batches: int | None) -> None:
    """Copy the Docker collector's database into ours (DATABASE_URL): option quotes, trades and depth of
    every currency, perpetual ticks, the REST tables, index prices, funding.

    Streams in batches with a progress bar per table (stderr); idempotent (a second run adds nothing)
    and resumable (killed, the next run goes on). Ends with a table: rows read, written, skipped as
    duplicates, rejected and why. README.md, "Moving from the Docker setup".
    """
    from collector.legacy import job

    settings = _settings(ctx)
    sys.exit(job.run(source, settings.require_database_url(), tables=tables, dry_run=dry_run, exact=exact,
                     full=full, jobs=jobs, batch_rows=batch_rows, kill_after_batches=kill_after_batches))


@db.command("status")
@click.option("--max-age", "max_age", multiple=True, metavar="[RELATION=]DURATION",
              help="Exit 1 when a relation's newest row is older than this (or it is empty). "
                   "DURATION alone applies to every time-series relation; RELATION=DURATION overrides one (RELATION "
                   "may be a glob, e.g. '*_quotes'). Repeatable; replaces COLLECTOR_MAX_AGE.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--exact", is_flag=True,
              help="Exact row counts (count(*)); the default is the planner's estimate, which is instant.")
@click.option("--monitor", is_flag=True,
              help="As collector-monitor.service runs it: record a size sample (for the growth figures) and, when "
                   "every check passes, send the \"resolved\" message of an open alert.")
@click.pass_context
def db_status(ctx: click.Context, max_age: tuple[str, ...], as_json: bool, exact: bool, monitor: bool) -> None:
    """Is all well? Per relation rows, newest row, age and limit; tick-data holes and data gaps of the
    last 24 h; each job's state, restarts and rate-limit hits; disk, table sizes, growth, days left; the
    newest backup. Exit 0 when every check passes, 1 when one fails (the failures are listed last)."""
    from collector.jobs import dbadmin

    settings = _settings(ctx)
    sys.exit(dbadmin.status(settings, max_age=max_age, as_json=as_json, exact=exact, monitor=monitor))


@main.command("alert")
@click.option("--unit", metavar="UNIT", help="The systemd unit that failed (collector-alert@.service passes %i).")
@click.option("--test", "test", is_flag=True, help="Send a test message to every configured channel.")
@click.pass_context
def alert_cmd(ctx: click.Context, unit: str | None, test: bool) -> None:
    """Tell a person: one message (what failed, the status lines, the unit's last error lines) to
    COLLECTOR_ALERT_WEBHOOK and/or COLLECTOR_ALERT_EMAIL; a repeat within COLLECTOR_ALERT_REPEAT_SECONDS
    is not sent. Exit 0 when sent or suppressed (or, with --unit, when no channel is configured: a
    warning is logged), 1 when a channel failed; --test exits 2 when none is configured."""
    from collector.config import ConfigError
    from collector.ops import alert

    settings = _settings(ctx)
    if test == bool(unit):
        raise ConfigError("collector alert", unit or "", "give exactly one of --unit UNIT or --test")
    sys.exit(alert.test(settings) if test else alert.unit_failed(settings, unit or ""))


@db.command("backup")
@click.option("--dir", "backup_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write the dump here [env COLLECTOR_BACKUP_DIR; default /var/backups/collector].")
@click.option("--keep", "backup_keep", type=click.IntRange(1), metavar="N",
              help="Keep the newest N dumps of this database [env COLLECTOR_BACKUP_KEEP; default 7].")
@click.pass_context
def db_backup(ctx: click.Context, backup_dir: Path | None, backup_keep: int | None) -> None:
    """pg_dump (custom format) of the database into DIR as collector-<db>-<UTC time>.dump; keeps the newest N.

    Dumps COLLECTOR_BACKUP_DATABASE_URL (a role that reads everything: the owner), else DATABASE_URL.
    TimescaleDB's circular-foreign-key warnings are expected and counted. Logs size and time.
    """
    from collector.jobs import backup

    sys.exit(backup.run_backup(_settings(ctx, backup_dir=backup_dir, backup_keep=backup_keep)))


@db.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def db_restore(ctx: click.Context, file: Path) -> None:
    """Restore a `collector db backup` FILE into the EMPTY database DATABASE_URL names.

    A database that holds anything is refused, unchanged. With TimescaleDB: the extension,
    timescaledb_pre_restore(), pg_restore (one transaction), timescaledb_post_restore(); then ANALYZE.
    """
    from collector.jobs import backup

    sys.exit(backup.run_restore(_settings(ctx), file))


@main.command("ws")
@click.option("--currency", required=True, metavar="CUR", help="The currency to stream, e.g. BTC (systemd: ws-collector@BTC).")
@_table_options("ws")
@click.option("--archive", "archive_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also keep every raw frame with its receive time, in hourly gzip files under DIR/CUR/.")
@click.pass_context
def ws(ctx: click.Context, currency: str, archive_dir: Path | None, **options) -> None:
    """Stream one currency's options (quotes, trades), index and perpetual book into the database.

    Runs until SIGTERM/SIGINT; reconnects forever; recovers missed trades over REST; records every gap
    it cannot recover in data_gaps. Under systemd it speaks sd_notify (READY, WATCHDOG, STATUS, STOPPING).
    """
    from collector.config import validate_currency
    from collector.jobs import ws as ws_job

    cur = validate_currency(currency.upper(), "--currency")
    top_n = options.pop("ws_top_n_default")   # --top-n: this stream's, so it wins over WS_{CUR}_TOP_N_INSTRUMENTS
    settings = _settings(ctx, **options, ws_top_n={cur: top_n} if top_n is not None else None)
    settings.require_database_url()
    sys.exit(ws_job.run(settings, cur, archive_dir=archive_dir))


@main.command("replay")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def replay(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Load recorded frames (ws --archive files, or one Deribit JSON message per line) into the database.

    Uses the stream's own parser and the idempotent writer; prints a JSON report of what was read,
    written and not understood.
    """
    from collector.jobs import replay as replay_job

    settings = _settings(ctx)
    sys.exit(replay_job.run(settings, list(files)))


@main.command("rest")
@_table_options("rest")
@click.pass_context
def rest(ctx: click.Context, **options) -> None:
    """One pass (every minute): 1-min candles of perpetuals and futures with catch-up, the option chain's
    1-min row, index prices. Exits 1 when anything failed (after storing the rest)."""
    from collector.jobs import rest as job

    sys.exit(job.run(_settings(ctx, **options)).exit_code)


@main.command("depth")
@_table_options("depth")
@click.pass_context
def depth(ctx: click.Context, **options) -> None:
    """One pass (every 5 min): top-N order books of the perpetuals and the options."""
    from collector.jobs import depth as job

    sys.exit(job.run(_settings(ctx, **options)).exit_code)


@main.command("greeks")
@_table_options("greeks")
@click.pass_context
def greeks(ctx: click.Context, **options) -> None:
    """One pass (hourly): greeks and IVs of every live option."""
    from collector.jobs import greeks as job

    sys.exit(job.run(_settings(ctx, **options)).exit_code)


@main.command("funding")
@_table_options("funding")
@click.pass_context
def funding(ctx: click.Context, **options) -> None:
    """One pass (every 8 h): perpetual funding history since the newest stored row."""
    from collector.jobs import funding as job

    sys.exit(job.run(_settings(ctx, **options)).exit_code)


@main.command("run-all")
@click.option("--for", "run_for", metavar="DURATION", help="Stop after this long (e.g. 60s, 2h); default: until SIGINT/SIGTERM.")
@_table_options("run-all")
@click.pass_context
def run_all(ctx: click.Context, run_for: str | None, **options) -> None:
    """Every job in one foreground process: a stream per currency, and rest (1 min), depth (5 min),
    greeks (hourly), funding (8 h) on their cadences -- for a laptop or a host without systemd."""
    from collector.config import ConfigError, parse_duration
    from collector.jobs import runall

    seconds = None
    if run_for:
        try:
            seconds = parse_duration(run_for)
        except ValueError:
            raise ConfigError("--for", run_for, "a duration such as 90s, 10m, 2h") from None
    settings = _settings(ctx, **options)
    settings.require_database_url()
    sys.exit(runall.run(settings, run_for_s=seconds))


@main.group("config", context_settings=CONTEXT)
def config_group() -> None:
    """The settings: check them, convert the Docker setup's .env, write the timers' cadences."""


def _env_of(env_file: Path | None) -> dict[str, str]:
    from collector.config import process_environment
    from collector.config_tools import read_env_file

    return read_env_file(env_file) if env_file is not None else process_environment()


_ENV_FILE = click.option("--env-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
                         help="Read the settings from this file (e.g. /etc/collector/collector.env) instead of the "
                              "environment: what the units see.")


@config_group.command("check")
@_ENV_FILE
@click.pass_context
def config_check(ctx: click.Context, env_file: Path | None) -> None:
    """Print every effective setting, its value (passwords hidden) and where it came from.

    Exit 0 when all are valid; a bad value is one line and exit 2."""
    from collector import config_tools

    base = {k: v for k, v in (ctx.find_root().obj or {}).items() if v is not None}
    lines, notes = config_tools.check(_env_of(env_file), base)
    click.echo(config_tools.format_check(lines, notes))


@config_group.command("from-env")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--env-out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write our collector.env here (default: print it).")
@click.option("--inventory-out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the inventory variables here (default: print them).")
def config_from_env(file: Path, env_out: Path | None, inventory_out: Path | None) -> None:
    """Turn the Docker setup's .env into our collector.env and the playbook's inventory variables.

    Every value is checked as ours would be (a bad one: one line, exit 2); what is not carried over is
    said on stderr, with why."""
    from collector import config_tools

    conv = config_tools.from_env(config_tools.read_env_file(file))
    for text, dest in ((config_tools.env_text(conv), env_out), (config_tools.inventory_text(conv), inventory_out)):
        if dest is None:
            click.echo(text, nl=False)
        else:
            dest.write_text(text, encoding="utf-8")
            click.echo(f"wrote {dest}", err=True)
    for note in conv.notes:
        click.echo(f"collector: note: {note}", err=True)


@config_group.command("timers")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("/etc/systemd/system"),
              show_default=True, help="Where the unit files are; drop-ins go to <timer>.d/ below it.")
@_ENV_FILE
@click.pass_context
def config_timers(ctx: click.Context, directory: Path, env_file: Path | None) -> None:
    """Write the OnCalendar= drop-ins of rest-collector.timer, greeks.timer and funding.timer from
    REST_*_INTERVAL, GREEKS_INTERVAL and FUNDING_INTERVAL. Prints `changed PATH` per file written
    (then run `systemctl daemon-reload`)."""
    from collector import config_tools
    from collector.config import Settings

    base = {k: v for k, v in (ctx.find_root().obj or {}).items() if v is not None}
    for path in config_tools.write_timers(Settings.load(env=_env_of(env_file), **base), directory):
        click.echo(f"changed {path}")


main.add_command(sim)


if __name__ == "__main__":  # pragma: no cover
    main()
