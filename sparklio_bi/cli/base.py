"""The command tree's root: the `sparklio-bi` group, its one error mapping, and what every command
family shares (the settings, step lines, the web server's address)."""
from __future__ import annotations

import click

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError

EXPECTED = (ExpectedError,)  # every expected failure of every layer derives from it (errors.py)


class Cli(click.Group):
    """The command tree: the bundle's expected errors, raised by any command of any group, become
    click's one-line error and exit status 1 (one mapping, nothing for a command to remember)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EXPECTED as exc:
            raise click.ClickException(str(exc)) from None


def server_address(fn):
    """--host and --port of the web server (SUPERSET_HOST, SUPERSET_PORT)."""
    fn = click.option("--port", type=int, default=lambda: settings().superset_port, show_default="8088")(fn)
    return click.option("--host", default=lambda: settings().superset_host, show_default="127.0.0.1")(fn)


def settings() -> config.Settings:
    try:
        return config.load()
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def step(text: str) -> None:
    click.echo(click.style("==> ", fg="cyan", bold=True) + text)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sparklio-bi")
def main() -> None:
    """Sparklio BI: versioned analytics views and Superset dashboards over Sparklio's PostgreSQL.

    With no DATABASE_URL, commands use an embedded PostgreSQL kept in .data/ (started on demand).
    """
