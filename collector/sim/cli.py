"""`collector sim`: the local Deribit (placeholder until the simulator lands)."""

import click


@click.command("sim")
def sim() -> None:
    """Run a local Deribit simulator (not built yet)."""
    raise click.ClickException("the simulator is not built yet")
