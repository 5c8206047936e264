"""`sparklio-bi bench`: the performance benchmark on a bundle of its own."""
from __future__ import annotations

import time
from pathlib import Path

import click

from sparklio_bi.cli.base import main, settings


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
@click.option("--source-indexes", type=click.Choice(["all", "none"]), default="all", show_default=True,
              help="none: measure with only primary keys on Sparklio's tables (the indexes doctor checks are "
                   "dropped, then built again at the end); charts, dashboards and the refresh only; writes "
                   "benchmarks/results-no-indexes.json.")
def bench(scale: float, runs: int, output: Path | None, data_dir: Path | None, skip_browser: bool, keep: bool,
          reseed: bool, port: int | None, source_indexes: str) -> None:
    """Benchmark the charts and dashboards on a bundle of its own: bootstrap (data of the same
    scale re-used), serve, then time each chart's reference SQL, generated SQL, data API (forced
    and cached), each dashboard's requests fired concurrently and its cold render in Chromium.
    Prints a summary; writes benchmarks/results.json and benchmarks/RESULTS-dashboards.md.

    Example: sparklio-bi bench --scale 1 --runs 3 --skip-browser
    """
    from sparklio_bi.quality import bench as benchmark
    from sparklio_bi.warehouse import seed as seeding

    seeding.sizes(scale)  # rejects a bad --scale before anything is started
    started = time.monotonic()

    def progress(line: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.0f}s] {line}", err=True)

    output = output or (benchmark.NO_INDEXES_OUTPUT if source_indexes == "none" else benchmark.DEFAULT_OUTPUT)
    try:
        results = benchmark.run(scale, runs, output, data_dir or benchmark.DEFAULT_DIR,
                                skip_browser, keep, reseed, port, progress, benchmark.command_line(),
                                settings().data_dir, source_indexes)
    except benchmark.BenchError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: the bench's Superset and PostgreSQL were stopped") from None
    for line in benchmark.summary_lines(results):
        click.echo(line)
    click.echo(f"\nwritten: {output} and {benchmark.markdown_path(output)} "
               f"({results['total_seconds']:.0f}s in all)")


