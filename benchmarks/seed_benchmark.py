"""Time and memory of `sparklio_bi.warehouse.seed.seed` at the given scales.

Seeds a database of its own, `sparklio_benchmark`, on the server of DATABASE_URL (else the
embedded server), so it never replaces the demo's or the application's rows; each scale runs in a fresh process so
that its peak RSS is its own, and prints one row of figures per scale. PostgreSQL's own memory
and CPU are not in the RSS figure: the server is another process.

Example: python benchmarks/seed_benchmark.py --scale 100 --scale 1000
"""
from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import time

import click
from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import migrate, seed, views

BENCHMARK_DATABASE = "sparklio_benchmark"


def _run(url: str, scale: float, seed_value: int) -> dict:
    started = time.perf_counter()
    counts = seed.seed(url, config.load(), scale, seed_value)
    seconds = time.perf_counter() - started
    peak_kib = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    schema = config.load().source_schema
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select sum(pg_total_relation_size(format('%%I.%%I', %s, t)::regclass)) "
                    "from unnest(%s) t", (schema, list(views.SOURCE_TABLES)))
        size = int(cur.fetchone()[0])
    return {"scale": scale, "seconds": seconds, "peak_rss_mib": peak_kib / 1024, "counts": counts,
            "bytes": size}


def measure(url: str, scale: float, seed_value: int) -> dict:
    """Seed once in a fresh process; wall time, peak RSS, rows and resulting table size."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run, (url, scale, seed_value))


def machine() -> str:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, {pages / 2**30:.1f} GiB RAM, "
            f"Python {platform.python_version()}")


@click.command()
@click.option("--scale", "scales", type=float, multiple=True, default=(100.0,), show_default=True,
              help="Scale to measure (repeatable); 1 = 10,000 agent_logs.")
@click.option("--seed", "seed_value", type=int, default=42, show_default=True)
def main(scales: tuple[float, ...], seed_value: int) -> None:
    """Seed at each scale and print wall time, peak RSS and rows per second."""
    url = make_url(database.analytics_url(config.load())).set(database=BENCHMARK_DATABASE)
    url = url.render_as_string(hide_password=False)
    database.ensure_database(url)
    migrate.apply_source_ddl(url, config.load())
    click.echo(f"database: {make_url(url).render_as_string(hide_password=True)}")
    click.echo(f"machine: {machine()}")
    click.echo(f"{'scale':>7} {'agent_logs':>11} {'all rows':>11} {'seconds':>8} {'rows/s':>9} "
               f"{'peak RSS MiB':>13} {'tables MiB':>11}")
    for scale in scales:
        result = measure(url, scale, seed_value)
        rows = sum(result["counts"].values())
        click.echo(f"{scale:>7g} {result['counts']['agent_logs']:>11,} {rows:>11,} {result['seconds']:>8.1f} "
                   f"{rows / result['seconds']:>9,.0f} {result['peak_rss_mib']:>13.0f} "
                   f"{result['bytes'] / 2**20:>11,.0f}")


if __name__ == "__main__":
    main()
