"""The `sparklio-bi` command line: thin wrappers that parse options, call one library function
and turn expected failures into one clear line with a non-zero exit."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import psycopg2

from . import assets, config, database, embedded_pg, migrate, privileges, superset_roles
from . import doctor as health
from .errors import BundleError

EXPECTED = (BundleError,)  # every expected failure of every layer derives from it (errors.py)


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


assets_dir_option = click.option("--dir", "assets_dir", type=click.Path(path_type=Path),
                                 default=assets.ASSETS_DIR, show_default=True,
                                 help="The bundle's folder (Superset's native export layout).")


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


# --- data ----------------------------------------------------------------------------------

@main.command()
@click.option("--scale", type=float, default=10.0, show_default=True,
              help="Size: 1 = 10,000 agent_logs, other tables in proportion.")
@click.option("--seed", "seed_value", type=int, default=42, show_default=True,
              help="Random seed: the same seed gives the same data (relative to now).")
@click.option("--apply-ddl/--no-apply-ddl", default=True, show_default=True,
              help="Create the source tables first when the database has none.")
@click.option("--replace-application-data", is_flag=True,
              help="Seed even tables sparklio-bi did not create: DELETES THEIR ROWS (never on Sparklio's own database).")
def seed(scale: float, seed_value: int, apply_ddl: bool, replace_application_data: bool) -> None:
    """Replace the source tables' rows with realistic demo data of the last 90 days.

    Example: sparklio-bi seed --scale 100 --seed 7
    """
    from . import seed as seeding

    seeding.sizes(scale)  # rejects a bad --scale before anything is started or touched
    s = settings()
    url = database.analytics_url(s)
    if apply_ddl:
        migrate.apply_source_ddl(url, s)
    seeding.check_replaceable(url, s, replace_application_data)  # before the progress bar shows
    counts = seed_with_progress(url, s, scale, seed_value, replace_application_data)
    click.echo(", ".join(f"{table} {n:,}" for table, n in counts.items()))


def seed_with_progress(url: str, s: config.Settings, scale: float, seed_value: int,
                       replace_application_data: bool = False) -> dict[str, int]:
    """Seed, showing one progress bar over every table's rows (the seeder interleaves tables)."""
    from . import seed as seeding

    written: dict[str, int] = {}
    with click.progressbar(length=seeding.sizes(scale).expected_rows, label="seeding", file=sys.stderr,
                           item_show_func=lambda table: table) as bar:
        def progress(table: str, done: int, total: int) -> None:
            bar.update(done - written.get(table, 0), table)
            written[table] = done

        return seeding.seed(url, s, scale, seed_value, progress=progress,
                            replace_application_data=replace_application_data)


@main.command()
@click.option("--once", "mode", flag_value="once", default=True, help="Take one sample and exit.")
@click.option("--interval", type=click.FloatRange(min=1), default=None,
              help="Sample every SECONDS until interrupted.")
def collect(mode: str, interval: float | None) -> None:
    """Sample system resources (connections, sizes; Redis and Celery with REDIS_URL) into
    analytics.system_samples for dashboard 5.

    Example: sparklio-bi collect --interval 60
    """
    from . import collect as collecting

    s = settings()
    url = database.analytics_url(s)
    if interval is None:
        click.echo(f"{collecting.collect_once(url, s)} samples written")
        return
    click.echo(f"sampling every {interval:g}s; Ctrl-C to stop")
    collecting.collect_forever(url, s, interval, on_sample=lambda n: click.echo(f"{n} samples written"),
                               on_error=lambda line: click.echo(line, err=True))


@main.group()
def rollups() -> None:
    """The rollups behind the dashboards (analytics.*_rollup, read through the *_stats views)."""


@rollups.command("refresh")
@click.option("--full", is_flag=True, help="Rebuild every rollup from all rows (else only what changed).")
@click.option("--every", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Refresh every SECONDS until interrupted (`serve` runs this every SPARKLIO_REFRESH_SECONDS, 30 s).")
def rollups_refresh(full: bool, every: float | None) -> None:
    """Recompute the rollup periods that changed since the last refresh: new hours, rows
    inserted late, failures that recovered, workflows and assets updated in place, and any of
    the last 7 days whose counts differ from the raw view's (checked every 10 minutes with --every).

    Example: sparklio-bi rollups refresh --full
    """
    from . import rollups as rolling

    s = settings()
    url = database.analytics_url(s)
    verified_at = None
    while True:
        started = time.monotonic()
        verify = verified_at is None or started - verified_at >= VERIFY_EVERY_SECONDS
        try:
            done = rolling.refresh_in_transaction(url, s, full=full, verify_days=rolling.VERIFY_DAYS if verify else 0)
        except (BundleError, psycopg2.Error) as exc:
            if every is None:
                raise database.DatabaseError(f"rollup refresh failed: {' '.join(str(exc).split())}") from None
            click.echo(f"rollup refresh failed, trying again in {every:g}s: {' '.join(str(exc).split())}", err=True)
        else:
            click.echo(f"refreshed in {time.monotonic() - started:.2f}s: " + ", ".join(
                f"{r.rollup} {r.periods} periods/{r.rows} rows" for r in done))
            for r in done:
                if r.repaired:
                    click.echo(f"repaired {r.rollup}: " + ", ".join(f"{day:%Y-%m-%d}" for day in r.repaired)
                               + " differed from the raw view")
            full = False
            verified_at = started if verify else verified_at
        if every is None:
            return
        time.sleep(max(0.0, every - (time.monotonic() - started)))


VERIFY_EVERY_SECONDS = 600  # the --every loop compares the last days with the raw views this often


@rollups.command("status")
def rollups_status() -> None:
    """Each rollup's watermark (rows after it are read live), last refresh and size.

    Example: sparklio-bi rollups status
    """
    from . import rollups as rolling

    s = settings()
    for name, watermark, refreshed_at, rows in rolling.status(database.analytics_url(s), s):
        click.echo(f"{name:<9} watermark {watermark}  refreshed {refreshed_at}  {rows:,} rows")


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
    from . import superset_app

    s = settings()
    url = privileges.reader_url(database.analytics_url(s), s)
    with superset_app.app_context():
        try:
            counts = assets.import_bundle(assets_dir, url, s.admin_username)
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
    from . import superset_app

    assets.check_export_target(assets_dir)  # before Superset starts: a refusal costs nothing
    with superset_app.app_context():
        written = assets.export_bundle(assets_dir, settings().admin_username)
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
    uri = None
    if with_password:
        s = settings()
        uri = privileges.reader_url(database.analytics_url(s), s)
    path = assets.zip_bundle(assets_dir, output, uri)
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
@click.option("--role", "access", type=click.Choice(sorted(superset_roles.ROLES)), default="viewer",
              show_default=True, help="viewer: dashboards only; analyst: dashboards and SQL Lab.")
@brand_option
@click.option("--email", default=None, help="E-mail address (default USERNAME@sparklio.local).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              envvar="SPARKLIO_USER_PASSWORD", help="Asked for when not in SPARKLIO_USER_PASSWORD.")
def users_add(username: str, access: str, brands: tuple[int, ...], email: str | None, password: str) -> None:
    """Create a Superset user with the viewer or analyst role, optionally limited to brands.

    Example: sparklio-bi users add alice --role viewer --brand 3
    """
    from . import superset_app

    problem = superset_roles.username_problem(username) or config.password_problem(password) or \
        (superset_roles.email_problem(email) if email is not None else None)
    if problem:
        raise click.ClickException(problem)
    _check_brands(brands)
    with superset_app.app_context():
        role = superset_roles.add_user(username, password, access, brands, email)
    click.echo(f"created {username!r} ({role}"
               + (f", brands {', '.join(map(str, brands))})" if brands else ", every brand)"))


@users.command("set-brands")
@click.argument("username")
@brand_option
def users_set_brands(username: str, brands: tuple[int, ...]) -> None:
    """Limit an existing user to these brands (no --brand: every brand again).

    Example: sparklio-bi users set-brands alice --brand 3 --brand 5
    """
    from . import superset_app

    _check_brands(brands)
    with superset_app.app_context():
        superset_roles.set_brands(username, brands)
    click.echo(f"{username!r} sees " + (f"brands {', '.join(map(str, brands))}" if brands else "every brand"))


def _check_brands(brands: tuple[int, ...]) -> None:
    if not brands:
        return
    s = settings()
    with database.connect(database.analytics_url(s)) as conn, conn.cursor() as cur:
        cur.execute(f"select brand_id from {s.analytics_schema}.brands where brand_id = any(%s)", (list(brands),))
        found = {row[0] for row in cur.fetchall()}
    missing = sorted(set(brands) - found)
    if missing:
        raise click.ClickException(f"no brand with id {', '.join(map(str, missing))} in {s.analytics_schema}.brands")


@main.command()
@click.option("--scale", type=float, default=10.0, show_default=True, help="Demo data size (see `seed`).")
@click.option("--seed", "seed_value", type=int, default=42, show_default=True, help="Demo data seed.")
@click.option("--reseed", is_flag=True, help="Replace existing source rows with fresh demo data.")
@click.option("--demo/--no-demo", default=None,
              help="Create source tables and demo data when empty. Default: on with the embedded "
                   "server, off with DATABASE_URL (the application's data is never touched).")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve Superset at the end.")
@server_address
def bootstrap(scale: float, seed_value: int, reseed: bool, demo: bool | None, serve: bool, host: str,
              port: int) -> None:
    """Set everything up and serve: database, views, demo data, Superset, admin, dashboards.

    Example: sparklio-bi bootstrap --scale 20
    """
    from . import bootstrap as steps
    from . import seed as seeding

    seeding.sizes(scale)  # rejects a bad --scale before anything is started or touched
    s = settings()
    steps.check_secrets()
    started = time.monotonic()
    demo = s.embedded if demo is None else demo
    with embedded_pg.data_dir_lock(s, "bootstrap", wait=False):
        url = steps.data_layer(s, step, lambda u: seed_with_progress(u, s, scale, seed_value), reseed, demo)
        steps.superset_layer(s, step, url)
    step(f"ready in {time.monotonic() - started:.0f}s")
    if serve:
        _serve(host, port, workers=2, collect_interval=60)


@main.command()
@click.option("--superset-url", default=lambda: f"http://{settings().superset_host}:{settings().superset_port}",
              show_default="http://127.0.0.1:8088", help="Where Superset answers.")
@click.option("--collect-interval", type=click.FloatRange(min=1), default=60, show_default=True,
              help="The collector's interval: samples older than twice it fail.")
@click.option("--skip", multiple=True, type=click.Choice(sorted(health.CHECKS)),
              help="Leave a check out (repeat), e.g. superset and collector before the web app runs.")
def doctor(superset_url: str, collect_interval: float, skip: tuple[str, ...]) -> None:
    """Check the install, one line per check (ok, or FAIL with the command that fixes it);
    exit 1 on any FAIL. Reads only: nothing is started or changed.

    Example: sparklio-bi doctor
    """
    results = health.run(settings(), superset_url.rstrip("/"), collect_interval, skip)
    for result in results:
        click.echo(result.line())
    if not all(result.ok for result in results):
        sys.exit(1)


@main.command("recover-secret-key")
def recover_secret_key() -> None:
    """After Superset's secret key was lost: use a new one (SUPERSET_SECRET_KEY, else a new
    .data/superset-secret-key; the old file is kept aside) and re-inject the bundle's database
    password with it. Other databases added by hand need their passwords entered again.

    Example: sparklio-bi recover-secret-key
    """
    from . import superset_setup

    s = settings()
    done, still_broken = superset_setup.recover_secret_key(s, privileges.reader_url(database.analytics_url(s), s))
    click.echo(done)
    if still_broken:
        click.echo(f"still encrypted with the lost key: {', '.join(still_broken)}: edit each in Superset "
                   "(Settings > Database Connections) and enter its password again", err=True)


@main.command()
@click.option("--scale", type=float, default=1000.0, show_default=True,
              help="Demo data size of the bench's own database (1 = 10,000 agent_logs).")
@click.option("--runs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed runs of each measurement, after one warm-up.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="benchmarks/results.json",
              help="The results as JSON; RESULTS-dashboards.md (Markdown) is written beside it.")
@click.option("--dir", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              show_default=".data-bench/ in the project",
              help="The bench's own data dir (embedded PostgreSQL, secrets, logs); never the install's .data/.")
@click.option("--skip-browser", is_flag=True, help="Leave out the dashboards' renders in headless Chromium.")
@click.option("--keep", is_flag=True, help="Leave the bench's Superset and PostgreSQL running at the end.")
@click.option("--reseed", is_flag=True,
              help="Seed again even when the bench's database already holds this scale.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, show_default="a free port",
              help="Port of the bench's Superset.")
def bench(scale: float, runs: int, output: Path | None, data_dir: Path | None, skip_browser: bool, keep: bool,
          reseed: bool, port: int | None) -> None:
    """Benchmark the 29 charts and 8 dashboards on a bundle of its own: bootstrap (data of the same
    scale re-used), serve, then time each chart's reference SQL, generated SQL, data API (forced
    and cached), each dashboard's requests fired concurrently and its cold render in Chromium.
    Prints a summary; writes benchmarks/results.json and benchmarks/RESULTS-dashboards.md.

    Example: sparklio-bi bench --scale 1 --runs 3 --skip-browser
    """
    from . import bench as benchmark
    from . import seed as seeding

    seeding.sizes(scale)  # rejects a bad --scale before anything is started
    started = time.monotonic()

    def progress(line: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.0f}s] {line}", err=True)

    try:
        results = benchmark.run(scale, runs, output or benchmark.DEFAULT_OUTPUT, data_dir or benchmark.DEFAULT_DIR,
                                skip_browser, keep, reseed, port, progress, benchmark.command_line())
    except benchmark.BenchError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: the bench's Superset and PostgreSQL were stopped") from None
    for line in benchmark.summary_lines(results):
        click.echo(line)
    written = output or benchmark.DEFAULT_OUTPUT
    click.echo(f"\nwritten: {written} and {written.with_name(benchmark.MARKDOWN_NAME)} "
               f"({results['total_seconds']:.0f}s in all)")


@main.command()
@server_address
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--collect-interval", type=click.FloatRange(min=0), default=60, show_default=True,
              help="Sample system resources every SECONDS while serving (0: off).")
def serve(host: str, port: int, workers: int, collect_interval: float) -> None:
    """Serve Superset (gunicorn) until interrupted.

    Example: sparklio-bi serve --port 8088
    """
    _serve(host, port, workers, collect_interval)


def _serve(host: str, port: int, workers: int, collect_interval: float) -> None:
    from . import server

    server.serve(settings(), host, port, workers, collect_interval, step)


if __name__ == "__main__":
    main()
