"""The `collector` command: one subcommand per job. Parses options, builds Settings, calls a job.

No logic lives here. A configuration error exits 2 with one line naming the variable.
"""

from __future__ import annotations

import sys

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


main.add_command(sim)


if __name__ == "__main__":  # pragma: no cover
    main()
