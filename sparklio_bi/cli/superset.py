"""`sparklio-bi assets ...`, `users ...` and `recover-secret-key`: Superset's side."""
from __future__ import annotations

from pathlib import Path

import click

from sparklio_bi.cli.base import main, settings
from sparklio_bi.postgres import database, privileges
from sparklio_bi.superset import app, assets, roles

assets_dir_option = click.option("--dir", "assets_dir", type=click.Path(path_type=Path),
                                 default=assets.ASSETS_DIR, show_default=True,
                                 help="The bundle's folder (Superset's native export layout).")



# --- Superset ------------------------------------------------------------------------------

@main.group("assets")
def assets_group() -> None:
    """The dashboards as YAML in assets/ (Superset's native export layout)."""


@assets_group.command("validate")
@assets_dir_option
def assets_validate(assets_dir: Path) -> None:
    """Check every asset offline: schema, UUID links, datasets' views in sql/.

    Example: sparklio-bi assets validate
    """
    report_problems(assets.validate(assets_dir), assets_dir)
    click.echo(f"{assets_dir}: valid")


def report_problems(problems: list[str], assets_dir: Path, consequence: str = "") -> None:
    """Print each problem on its own line, then fail with one summary line."""
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        tail = f": {consequence}" if consequence else ""
        raise click.ClickException(f"{len(problems)} problem(s) in {assets_dir}{tail}")


@assets_group.command("import")
@assets_dir_option
def assets_import(assets_dir: Path) -> None:
    """Import every asset into Superset's metadata, overwriting charts and datasets too,
    in one transaction (a bad bundle changes nothing).

    Example: sparklio-bi assets import
    """

    s = settings()
    owner_url = database.analytics_url(s)
    with app.app_context(s):
        try:
            counts = assets.import_bundle(assets_dir, privileges.superset_url(owner_url, s), s,
                                          server_uri=privileges.server_url(owner_url, s))
        except assets.AssetsError as exc:
            report_problems(exc.problems, assets_dir, "nothing imported")
            raise
    click.echo("imported " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


@assets_group.command("export")
@assets_dir_option
def assets_export(assets_dir: Path) -> None:
    """Export the dashboards from Superset back into assets/, normalised for a clean git diff.

    Example: sparklio-bi assets export && git diff assets/
    """

    assets.check_export_target(assets_dir)  # before Superset starts: a refusal costs nothing
    s = settings()
    with app.app_context(s):
        written = assets.export_bundle(assets_dir, s)
    click.echo(f"{len(written)} files written to {assets_dir}")


@assets_group.command("zip")
@assets_dir_option
@click.option("--output", "-o", type=click.Path(path_type=Path), default=Path("sparklio-dashboards.zip"),
              show_default=True)
@click.option("--with-password", is_flag=True,
              help="Put the read-only role's password in the zip (for a Superset that has no "
                   "database yet); the file is then readable by its owner only.")
def assets_zip(assets_dir: Path, output: Path, with_password: bool) -> None:
    """Write a ZIP that `superset import-dashboards -p ZIP -u admin` accepts.

    Example: sparklio-bi assets zip -o /tmp/bundle.zip
    """
    s, uri, server_uri = settings(), None, None
    if with_password:
        owner_url = database.analytics_url(s)
        uri, server_uri = privileges.superset_url(owner_url, s), privileges.server_url(owner_url, s)
    path = assets.zip_bundle(assets_dir, output, s.analytics_schema, uri, server_uri)
    if with_password:
        click.echo(f"warning: {path} holds the password of the read-only role: keep it private", err=True)
    click.echo(str(path))


# --- people ---------------------------------------------------------------------------------

@main.group()
def users() -> None:
    """Superset users of the bundle's roles: viewer, analyst, and per-brand access."""


brand_option = click.option("--brand", "brands", type=int, multiple=True, metavar="BRAND_ID",
                            help="Limit the user to this brand's rows (repeat for several; none: all brands).")


@users.command("add")
@click.argument("username")
@click.option("--role", "access", type=click.Choice(sorted(roles.ROLES)), default="viewer",
              show_default=True, help="viewer: dashboards only; analyst: dashboards and SQL Lab.")
@brand_option
@click.option("--email", default=None, help="E-mail address (default USERNAME@sparklio.local).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              envvar="SPARKLIO_USER_PASSWORD", help="Asked for when not in SPARKLIO_USER_PASSWORD.")
def users_add(username: str, access: str, brands: tuple[int, ...], email: str | None, password: str) -> None:
    """Create a Superset user with the viewer or analyst role, optionally limited to brands.

    Example: sparklio-bi users add alice --role viewer --brand 3
    """
    problem = roles.new_user_problem(username, password, email)
    if problem:
        raise click.ClickException(problem)
    s = settings()
    roles.check_brands(database.analytics_url(s), s, brands)
    with app.app_context(s):
        role = roles.add_user(username, password, access, brands, email)
    click.echo(f"created {username!r} ({role}"
               + (f", brands {', '.join(map(str, brands))})" if brands else ", every brand)"))


@users.command("set-brands")
@click.argument("username")
@brand_option
def users_set_brands(username: str, brands: tuple[int, ...]) -> None:
    """Limit an existing user to these brands (no --brand: every brand again).

    Example: sparklio-bi users set-brands alice --brand 3 --brand 5
    """
    s = settings()
    roles.check_brands(database.analytics_url(s), s, brands)
    with app.app_context(s):
        roles.set_brands(username, brands)
    click.echo(f"{username!r} sees " + (f"brands {', '.join(map(str, brands))}" if brands else "every brand"))


@main.command("recover-secret-key")
def recover_secret_key() -> None:
    """After Superset's secret key was lost: use a new one (SUPERSET_SECRET_KEY, else a new
    .data/superset-secret-key; the old file is kept aside) and re-inject the bundle's database
    password with it. Other databases added by hand need their passwords entered again.

    Example: sparklio-bi recover-secret-key
    """
    from sparklio_bi.superset import setup

    s = settings()
    owner_url = database.analytics_url(s)
    done, still_broken = setup.recover_secret_key(s, privileges.superset_url(owner_url, s),
                                                  privileges.server_url(owner_url, s))
    click.echo(done)
    if still_broken:
        click.echo(f"still encrypted with the lost key: {', '.join(still_broken)}: edit each in Superset "
                   "(Settings > Database Connections) and enter its password again", err=True)


