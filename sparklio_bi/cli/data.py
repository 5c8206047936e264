"""`sparklio-bi seed`, `collect` and `rollups ...`: the warehouse's data."""
from __future__ import annotations

import sys

import click

from sparklio_bi import config
from sparklio_bi.cli.base import main, settings
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import migrate

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
    from sparklio_bi.warehouse import seed as seeding

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
    from sparklio_bi.warehouse import seed as seeding

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
    from sparklio_bi.warehouse import collect as collecting

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
    inserted late, failures that recovered, workflows and assets updated in place, and any day
    whose counts differ from the raw view's (all checked at once; with --every, a few slices of
    the days and months per refresh, round-robin, a round's time printed when it ends).

    Example: sparklio-bi rollups refresh --full
    """
    from sparklio_bi.warehouse import rollups as rolling

    def report(done: list, seconds: float, progress: rolling.Progress | None) -> None:
        checked = "" if progress is None else (f"; checked {len(progress.checked)} slices "
                                               f"({progress.position}/{progress.total} of the round) "
                                               f"in {progress.seconds:.2f}s")
        click.echo(f"refreshed in {seconds:.2f}s: " + ", ".join(f"{r.rollup} {r.periods} periods/{r.rows} rows"
                                                                for r in done) + checked)
        for r in done:
            if r.repaired:
                click.echo(f"repaired {r.rollup}: " + ", ".join(f"{day:%Y-%m-%d}" for day in r.repaired)
                           + " differed from the raw view")
        if progress is not None and progress.round_seconds is not None:
            click.echo(f"checked every rollup against the raw views: {progress.total} slices in "
                       f"{progress.round_seconds / 60:.1f} min, {progress.round_work:.2f}s of it checking")

    s = settings()
    rolling.refresh_repeatedly(database.analytics_url(s), s, every, full, report,
                               on_error=lambda line: click.echo(line, err=True))


@rollups.command("status")
def rollups_status() -> None:
    """Each rollup's watermark (rows after it are read live), last refresh and size.

    Example: sparklio-bi rollups status
    """
    from sparklio_bi.warehouse import rollups as rolling

    s = settings()
    for name, watermark, refreshed_at, rows in rolling.status(database.analytics_url(s), s):
        click.echo(f"{name:<9} watermark {watermark}  refreshed {refreshed_at}  {rows:,} rows")


