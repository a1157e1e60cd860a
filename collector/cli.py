"""The `collector` command: one subcommand per job. Parses options, builds Settings, calls a job.

No logic lives here. A configuration error exits 2 with one line naming the variable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from collector import __version__, log
from collector.config import ConfigError, Settings
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


def _settings(ctx: click.Context, **overrides) -> Settings:
    base = ctx.find_root().obj or {}
    settings = Settings.load(**{**base, **{k: v for k, v in overrides.items() if v is not None}})
    log.setup(settings.log_level)
    return settings


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="collector")
@click.option("--database-url", metavar="URL", help="PostgreSQL URL [env DATABASE_URL].")
@click.option("--currencies", metavar="LIST", help="Comma-separated currencies, e.g. BTC,ETH,SOL [env COLLECTOR_CURRENCIES; default BTC,ETH].")
@click.option("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR [env COLLECTOR_LOG_LEVEL; default INFO].")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, currencies: str | None, log_level: str | None) -> None:
    """Record Deribit market data into TimescaleDB / PostgreSQL.

    Every option can also be set in the environment (under systemd: /etc/collector/collector.env).
    Logs are JSON lines on stderr.
    """
    ctx.obj = {"database_url": database_url, "currencies": currencies, "log_level": log_level}


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
@click.option("--exact", is_flag=True, help="Exact row counts (count(*)); the default is the planner's estimate, which is instant.")
@click.pass_context
def db_status(ctx: click.Context, max_age: tuple[str, ...], as_json: bool, exact: bool) -> None:
    """Per relation: rows, newest timestamp and its age — is everything flowing?"""
    from collector.jobs import dbadmin

    settings = _settings(ctx)
    sys.exit(dbadmin.status(settings, max_age=max_age, as_json=as_json, exact=exact))


@main.command("ws")
@click.option("--currency", required=True, metavar="CUR", help="The currency to stream, e.g. BTC (systemd: ws-collector@BTC).")
@click.option("--ws-url", metavar="URL", help="Deribit WebSocket URL [env DERIBIT_WS_URL].")
@click.option("--rest-url", metavar="URL", help="Deribit REST URL, for backfills and the instrument list [env DERIBIT_REST_URL].")
@click.option("--top-n", type=int, metavar="N", help="Options to stream, by open interest; 0 = the whole chain [env WS_{CUR}_TOP_N_INSTRUMENTS; default 50].")
@click.option("--archive", "archive_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also keep every raw frame with its receive time, in hourly gzip files under DIR/CUR/.")
@click.pass_context
def ws(ctx: click.Context, currency: str, ws_url: str | None, rest_url: str | None, top_n: int | None,
       archive_dir: Path | None) -> None:
    """Stream one currency's options (quotes, trades), index and perpetual book into the database.

    Runs until SIGTERM/SIGINT; reconnects forever; recovers missed trades over REST; records every gap
    it cannot recover in data_gaps. Under systemd it speaks sd_notify (READY, WATCHDOG, STATUS, STOPPING).
    """
    from collector.config import validate_currency
    from collector.jobs import ws as ws_job

    cur = validate_currency(currency.upper(), "--currency")
    settings = _settings(ctx, ws_url=ws_url, rest_url=rest_url,
                         ws_top_n={cur: top_n} if top_n is not None else None)
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


_REST_URL = click.option("--rest-url", metavar="URL", help="Deribit REST URL [env DERIBIT_REST_URL].")


@main.command("rest")
@_REST_URL
@click.pass_context
def rest(ctx: click.Context, rest_url: str | None) -> None:
    """One pass (every minute): 1-min candles of perpetuals and futures with catch-up, the option chain's
    1-min row, index prices. Exits 1 when anything failed (after storing the rest)."""
    from collector.jobs import rest as job

    sys.exit(job.run(_settings(ctx, rest_url=rest_url)).exit_code)


@main.command("depth")
@_REST_URL
@click.option("--top-n", "depth_top_n", type=int, metavar="N", help="Book levels per side [env DEPTH_TOP_N; default 20].")
@click.option("--options-top-n", "depth_options_top_n", type=int, metavar="N",
              help="Options per currency, by open interest; 0 = all [env DEPTH_OPTIONS_TOP_N; default 0].")
@click.pass_context
def depth(ctx: click.Context, rest_url: str | None, depth_top_n: int | None, depth_options_top_n: int | None) -> None:
    """One pass (every 5 min): top-N order books of the perpetuals and the options."""
    from collector.jobs import depth as job

    sys.exit(job.run(_settings(ctx, rest_url=rest_url, depth_top_n=depth_top_n,
                               depth_options_top_n=depth_options_top_n)).exit_code)


@main.command("greeks")
@_REST_URL
@click.pass_context
def greeks(ctx: click.Context, rest_url: str | None) -> None:
    """One pass (hourly): greeks and IVs of every live option."""
    from collector.jobs import greeks as job

    sys.exit(job.run(_settings(ctx, rest_url=rest_url)).exit_code)


@main.command("funding")
@_REST_URL
@click.pass_context
def funding(ctx: click.Context, rest_url: str | None) -> None:
    """One pass (every 8 h): perpetual funding history since the newest stored row."""
    from collector.jobs import funding as job

    sys.exit(job.run(_settings(ctx, rest_url=rest_url)).exit_code)


@main.command("run-all")
@click.option("--for", "run_for", metavar="DURATION", help="Stop after this long (e.g. 60s, 2h); default: until SIGINT/SIGTERM.")
@click.option("--ws-url", metavar="URL", help="Deribit WebSocket URL [env DERIBIT_WS_URL].")
@_REST_URL
@click.pass_context
def run_all(ctx: click.Context, run_for: str | None, ws_url: str | None, rest_url: str | None) -> None:
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
    settings = _settings(ctx, ws_url=ws_url, rest_url=rest_url)
    settings.require_database_url()
    sys.exit(runall.run(settings, run_for_s=seconds))


main.add_command(sim)


if __name__ == "__main__":  # pragma: no cover
    main()
