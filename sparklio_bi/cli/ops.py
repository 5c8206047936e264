"""`sparklio-bi bootstrap`, `serve` and `doctor`: running the bundle."""
from __future__ import annotations

import contextlib
import sys

import click

from sparklio_bi.cli.base import main, server_address, settings, step
from sparklio_bi.cli.data import seed_with_progress
from sparklio_bi.ops import doctor as health
from sparklio_bi.postgres import embedded_pg


@main.command()
@click.option("--scale", type=float, default=10.0, show_default=True, help="Demo data size (see `seed`).")
@click.option("--seed", "seed_value", type=int, default=42, show_default=True, help="Demo data seed.")
@click.option("--reseed", is_flag=True, help="Replace existing source rows with fresh demo data.")
@click.option("--demo/--no-demo", default=None,
              help="Create source tables and demo data when empty. Default: on with the embedded "
                   "server, off with DATABASE_URL (the application's data is never touched).")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve Superset at the end.")
@click.option("--progress", "progress_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="How the steps are told on stdout: lines for a person, or one JSON "
                                      "object a line for a program (the seeding bar stays on stderr).")
@server_address
def bootstrap(scale: float, seed_value: int, reseed: bool, demo: bool | None, serve: bool, progress_format: str,
              host: str, port: int) -> None:
    """Set everything up and serve: database, views, demo data, Superset, admin, dashboards.

    Example: sparklio-bi bootstrap --scale 20
    """
    from sparklio_bi.ops import bootstrap as steps
    from sparklio_bi.warehouse import seed as seeding

    seeding.sizes(scale)  # rejects a bad --scale before anything is started or touched
    s = settings()
    steps.check_secrets()
    as_json = progress_format == "json"
    events = sys.stdout  # with --progress json, stdout holds the events alone: libraries' prints go to stderr
    progress = steps.Progress((lambda line: click.echo(line, file=events)) if as_json else step, json_lines=as_json)
    demo = s.embedded if demo is None else demo
    with embedded_pg.data_dir_lock(s, "bootstrap", wait=False), \
            contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        url = steps.data_layer(s, progress, lambda u: seed_with_progress(u, s, scale, seed_value), reseed, demo)
        steps.superset_layer(s, progress, url)
    progress.ready()
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


@main.command()
@server_address
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--collect-interval", type=click.FloatRange(min=0), default=60, show_default=True,
              help="Sample system resources every SECONDS while serving (0: off).")
@click.option("--celery/--no-celery", default=True, show_default=True,
              help="With REDIS_URL: run Superset's Celery worker and beat (Alerts & Reports) beside it. "
                   "One beat per deployment: --no-celery on every web node but one.")
def serve(host: str, port: int, workers: int, collect_interval: float, celery: bool) -> None:
    """Serve Superset (gunicorn) until interrupted, with the rollup refresher, the sampler and,
    when REDIS_URL is set, Superset's Celery worker and beat.

    Example: sparklio-bi serve --port 8088
    """
    _serve(host, port, workers, collect_interval, celery)


def _serve(host: str, port: int, workers: int, collect_interval: float, celery: bool = True) -> None:
    from sparklio_bi.ops import server

    server.serve(settings(), host, port, workers, collect_interval, step, celery)

