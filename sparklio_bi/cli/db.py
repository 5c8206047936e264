"""`sparklio-bi db ...`: the embedded PostgreSQL and the views' migrations (Alembic, thin)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from sparklio_bi.cli.base import main, settings
from sparklio_bi.postgres import database, embedded_pg, pooler, privileges, standby
from sparklio_bi.warehouse import indexes, migrate

# --- database ------------------------------------------------------------------------------

@main.group()
def db() -> None:
    """The database: embedded server lifecycle and the views' migrations."""


@db.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (creates it in .data/pg on first use).

    Example: sparklio-bi db start
    """
    s = settings()
    if s.database_url:
        raise click.ClickException("DATABASE_URL is set: the embedded server is not used")
    click.echo(embedded_pg.start(s).describe())


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL; its data stays in .data/pg.

    Example: sparklio-bi db stop
    """
    click.echo("stopped" if embedded_pg.stop(settings()) else "not running")


@db.command("status")
def db_status() -> None:
    """Say whether the embedded PostgreSQL runs (exit 3 when it does not).

    Example: sparklio-bi db status
    """
    s = settings()
    if s.database_url:
        click.echo("using DATABASE_URL; the embedded server is not used")
        return
    state = embedded_pg.status(s)
    click.echo(state.describe())
    if not state.running:
        sys.exit(3)


@db.command("url")
@click.option("--superset", is_flag=True, help="Print Superset's metadata database URL instead.")
def db_url(superset: bool) -> None:
    """Print the SQLAlchemy URL of the analytics database (starts the embedded server if needed).

    Example: psql "$(sparklio-bi db url | sed 's/+psycopg2//')"
    """
    s = settings()
    click.echo(database.superset_metadata_url(s) if superset else database.analytics_url(s))


@db.command("apply-source-ddl")
def db_apply_source_ddl() -> None:
    """Create Sparklio's reference source tables in an empty database (for demos and tests).

    Example: sparklio-bi db apply-source-ddl
    """
    s = settings()
    created = migrate.apply_source_ddl(database.analytics_url(s), s)
    click.echo("source tables created" if created else "source tables already present: unchanged")


@db.command("indexes")
@click.option("--create", is_flag=True, help="Build the missing ones, concurrently (the application keeps writing).")
def db_indexes(create: bool) -> None:
    """List the indexes on Sparklio's tables that the views and the rollup refresh rely on, one
    line each (ok, missing or invalid, and what it serves); exit 1 when one is not there.

    Example: sparklio-bi db indexes --create
    """
    s = settings()
    url = database.analytics_url(s)
    if create:
        built = indexes.create_missing(url, s, lambda line: click.echo(f"==> {line}"))
        click.echo(f"built {len(built)} index(es)" if built else "nothing to build")
    survey = indexes.survey(url, s)
    for found in survey:
        state = {"present": f"ok       ({found.existing})", "missing": "MISSING",
                 "invalid": f"INVALID  ({found.existing})"}[found.state]
        click.echo(f"{state:<40} {found.index.described(s.source_schema)}: {found.index.serves}")
    if any(found.state != "present" for found in survey):
        click.echo("missing or invalid: sparklio-bi db indexes --create", err=True)
        sys.exit(1)


@db.command("pooler")
@click.option("--listen", default="127.0.0.1", show_default=True, help="Address PgBouncer listens on.")
@click.option("--server", "server_url", default=None, metavar="URL",
              help="postgresql://HOST:PORT/DATABASE it pools (no credentials needed; default: the analytics "
                   "database, DATABASE_URL or the embedded server).")
def db_pooler(listen: str, server_url: str | None) -> None:
    """Run PgBouncer (Debian's pgbouncer) in the foreground before the analytics database, for the
    read-only role, in transaction pooling, on SPARKLIO_POOLER_PORT: what docker-compose's
    pgbouncer service runs (`serve` runs its own beside the embedded server). Point Superset at it
    with SPARKLIO_READER_URL=postgresql://HOST:PORT/DATABASE before `bootstrap`.

    Example: sparklio-bi db pooler --listen 0.0.0.0 --server postgresql://postgres:5432/sparklio
    """
    s = settings()
    problem = pooler.port_problem(s)
    if problem:
        raise click.ClickException(problem)
    ini = pooler.write_config(s, server_url or database.analytics_url(s), privileges.reader_password(s), "pooler",
                              listen)
    command = pooler.command(ini)
    user = embedded_pg.run_as()
    click.echo(f"PgBouncer on {listen}:{s.pooler_port} for {s.reader_role}, log in {ini.with_suffix('.log')}", err=True)
    if user:  # as root: PgBouncer refuses to run as root
        command = [command[0], "--user", user, *command[1:]]
    os.execv(command[0], command)


@db.command("standby")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--port", type=int, default=5434, show_default=True, help="Port the standby listens on (127.0.0.1).")
@click.option("--stop", "stopping", is_flag=True, help="Stop the standby in FOLDER instead.")
def db_standby(folder: Path, port: int, stopping: bool) -> None:
    """Make a hot standby of the embedded server in FOLDER (pg_basebackup over loopback, streaming
    replication) and start it on PORT; prints the SPARKLIO_READER_URL that points Superset's reads
    at it (then `bootstrap` or `assets import`). Migrations, seeding and the refresh keep writing
    to the primary.

    Example: sparklio-bi db standby .data/standby --port 5434
    """
    if stopping:
        standby.stop(folder)
        click.echo(f"standby in {folder} stopped")
        return
    s = settings()
    if not s.embedded:
        raise click.ClickException("db standby copies the embedded server; with DATABASE_URL, point "
                                   "SPARKLIO_READER_URL at your own standby")
    url = make_url(standby.create(s, folder.resolve(), port))
    click.echo(f"SPARKLIO_READER_URL=postgresql://{url.host}:{url.port}/{url.database}")


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the analytics views up to REVISION (default: head), in one transaction.

    Example: sparklio-bi db upgrade head
    """
    s = settings()
    url = database.analytics_url(s)
    migrate.upgrade(url, s, revision)
    for line in migrate.repair_views(url, s):
        click.echo(f"repaired {line}")
    click.echo(f"analytics views at {migrate.current(url, s) or 'base'}")


@db.command("downgrade", context_settings={"ignore_unknown_options": True})  # `db downgrade -1`
@click.argument("revision", default="-1")
@click.option("--drop-data", is_flag=True, help="Allow a step that deletes collected data (system samples).")
def db_downgrade(revision: str, drop_data: bool) -> None:
    """Migrate the analytics views down to REVISION (default: one step back; `base` drops all).

    Example: sparklio-bi db downgrade 0003
    """
    s = settings()
    url = database.analytics_url(s)
    migrate.downgrade(url, s, revision, drop_data)
    click.echo(f"analytics views at {migrate.current(url, s) or 'base'}")


@db.command("current")
def db_current() -> None:
    """Print the revision the analytics views are at.

    Example: sparklio-bi db current
    """
    s = settings()
    rev = migrate.current(database.analytics_url(s), s)
    head = migrate.head()
    click.echo(f"{rev or 'base'}{' (head)' if rev == head else f' (head is {head})'}")


@db.command("history")
def db_history() -> None:
    """List the migrations, oldest first (needs no database).

    Example: sparklio-bi db history
    """
    for revision, down, doc in migrate.history():
        click.echo(f"{down or 'base'} -> {revision}  {doc}")


