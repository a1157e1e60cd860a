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
    """Database schema and health: migrate, status."""


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


@db.command("status")
@click.option("--max-age", "max_age", multiple=True, metavar="[RELATION=]DURATION",
              help="Exit 1 when a relation's newest row is older than this (or it is empty). "
                   "DURATION alone applies to every time-series relation; RELATION=DURATION overrides one. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--exact", is_flag=True,
              help="Exact row counts (count(*)); the default is the planner's estimate, which is instant.")
@click.pass_context
def db_status(ctx: click.Context, max_age: tuple[str, ...], as_json: bool, exact: bool) -> None:
    """Per relation: rows, newest timestamp and its age — is everything flowing?"""
    from collector.jobs import dbadmin

    settings = _settings(ctx)
    sys.exit(dbadmin.status(settings, max_age=max_age, as_json=as_json, exact=exact))


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


main.add_command(sim)


if __name__ == "__main__":  # pragma: no cover
    main()
