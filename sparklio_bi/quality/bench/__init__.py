"""`sparklio-bi bench`: how fast the charts and dashboards answer, at a given scale.

Two layers:

- `measure(base_url, session, owner_url, reader_url, runs)` measures a Superset that already
  serves the bundle (the tests call it on their session's server): per chart (a) its reference
  SQL on the source tables as the owner, (b) the SQL Superset generates for it, run directly as
  the reader role, (c) the chart data API with the cache bypassed and (d) cached; per dashboard
  all its charts' data and its select filters' options fired concurrently, as a browser does,
  and optionally (`render`) its cold render in headless Chromium.
- `run(...)` (the CLI) wraps a whole bundle of its own around that: its own data dir and
  embedded PostgreSQL on a free port, `sparklio-bi bootstrap`, `sparklio-bi serve`, all as
  subprocesses of the CLI with a copied environment, so the user's database and .data/ are
  never touched. It writes results.json and a Markdown summary.
"""
from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

from sparklio_bi import config, datadir
from sparklio_bi.config import PROJECT_ROOT
from sparklio_bi.postgres import embedded_pg, pooler, privileges
from sparklio_bi.quality.bench.charts import measure_charts
from sparklio_bi.quality.bench.dashboards import measure_dashboards, measure_renders
from sparklio_bi.quality.bench.exporter import measure_exporter_round
from sparklio_bi.quality.bench.harness import (
    DEFAULT_DIR,
    DEFAULT_OUTPUT,
    MARKDOWN_NAME,
    NO_INDEXES_OUTPUT,
    BenchError,
    Progress,
    bench_environment,
    bootstrap,
    drop_source_indexes,
    free_port,
    git_revision,
    machine,
    markdown_path,
    row_counts,
    run_cli,
    serve,
    stop_server,
)
from sparklio_bi.quality.bench.pooling import measure_pooling
from sparklio_bi.quality.bench.ranges import (
    CUSTOM_RANGES,
    NAMED_RANGES,
    measure_ranges,
    queries_for_ranges,
    range_targets,
    ranged_charts,
)
from sparklio_bi.quality.bench.report import TARGETS, evaluate, markdown, summary_lines
from sparklio_bi.quality.bench.stats import P95_SAMPLES
from sparklio_bi.quality.bench.upkeep import measure_rollups, rollup_targets
from sparklio_bi.superset import rest

# what the CLI and the tests use, each defined in its module
__all__ = ["CUSTOM_RANGES", "DEFAULT_DIR", "DEFAULT_OUTPUT", "MARKDOWN_NAME", "NO_INDEXES_OUTPUT", "markdown_path",
           "NAMED_RANGES", "TARGETS", "BenchError",
           "command_line", "markdown", "measure", "measure_ranges", "queries_for_ranges", "range_targets",
           "ranged_charts", "run", "summary_lines"]

def measure(base: str, session: requests.Session, owner_url: str, reader_url: str, runs: int,
            render_cookie: str | None = None, progress: Progress = lambda line: None,
            forced_runs: int | None = None) -> dict:
    """Every measurement on a Superset serving the bundle at `base`, logged in as `session`'s
    user (an admin); owner_url: the analytics database as its owner (reference SQL, source
    tables in `public`); reader_url: as the role Superset connects with. render_cookie: the
    session cookie of a form login, to render in Chromium (None: no renders). forced_runs: how
    many times each chart's forced data request is timed (default `runs`)."""
    charts = measure_charts(base, session, owner_url, reader_url, runs, progress, forced_runs)
    dashboards = measure_dashboards(base, session, runs, progress)
    if render_cookie:
        measure_renders(base, render_cookie, dashboards, runs, progress)
    return {"runs": runs, "charts": charts, "dashboards": dashboards,
            "targets": evaluate(charts, dashboards)}


def run(scale: float, runs: int, output: Path, data_dir: Path, skip_browser: bool, keep: bool, reseed: bool,
        port: int | None, progress: Progress, command: str, install_dir: Path, source_indexes: str = "all") -> dict:
    """The whole benchmark on a bundle of its own (never `install_dir`, the install's data dir);
    returns the results written to `output`. `source_indexes` "none": Sparklio's tables keep only
    their primary keys while it measures (the indexes of warehouse/indexes.py are dropped, then
    built again at the end): the charts, the dashboards and the refresh, not the time ranges,
    the renders or the pooler."""
    from sqlalchemy.engine import make_url

    if port is not None and embedded_pg.port_taken(port):
        raise BenchError(f"port {port} is taken by another program: pass another --port, or none for a free one")
    if not skip_browser:
        import shutil
        if not (shutil.which("chromium") and shutil.which("chromedriver")):
            raise BenchError("Debian's chromium and chromium-driver are needed for renders "
                             "(apt-get install chromium chromium-driver), or pass --skip-browser")
    data_dir = data_dir.resolve()
    if data_dir in {(PROJECT_ROOT / ".data").resolve(), install_dir.resolve()}:
        raise BenchError(f"--dir {data_dir} is the install's own data dir: the bench needs one of its own")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / ".gitignore").write_text("*\n")  # keeps git status clean inside the project
    running = embedded_pg.status(config.load(bench_environment(data_dir, 5433)))
    pg_port = running.port if running.running else free_port()
    env = bench_environment(data_dir, pg_port)
    settings = config.load(env)
    started = time.perf_counter()
    server, web_port, dropped = None, port or free_port(), []
    progress(f"bench data dir {data_dir}, embedded PostgreSQL on 127.0.0.1:{pg_port}")
    try:
        boot = bootstrap(env, data_dir, scale, reseed, progress)
        upgrade_started = time.perf_counter()
        run_cli(env, "db", "upgrade")
        boot["db_upgrade_seconds"] = round(time.perf_counter() - upgrade_started, 3)
        progress(f"db upgrade (at head) {boot['db_upgrade_seconds']:.2f}s")
        rebuild_started = time.perf_counter()
        run_cli(env, "rollups", "refresh", "--full", timeout=3600)
        boot["rollups_full_seconds"] = round(time.perf_counter() - rebuild_started, 1)
        progress(f"rollups rebuilt from every row (what migrations 0007 and 0012 do at this size) in "
                 f"{boot['rollups_full_seconds']:.0f}s")
        owner_url = run_cli(env, "db", "url").stdout.strip()
        reader_password = (data_dir / datadir.READER_PASSWORD).read_text().strip()
        reader_url = make_url(owner_url).set(username=settings.reader_role, password=reader_password) \
            .render_as_string(hide_password=False)
        counts = row_counts(owner_url)
        progress("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
        if source_indexes == "none":
            skip_browser, dropped = True, drop_source_indexes(owner_url, settings)
            progress(f"source indexes dropped (built again at the end): {', '.join(dropped)}")
        server = serve(env, data_dir, web_port, progress)
        base = f"http://127.0.0.1:{web_port}"
        password = (data_dir / datadir.ADMIN_PASSWORD).read_text().strip()
        session = rest.form_login(base, "admin", password)
        results = measure(base, session, owner_url, reader_url, runs,
                          render_cookie=None if skip_browser else session.cookies["session"], progress=progress,
                          forced_runs=max(runs, P95_SAMPLES))
        if pooler.enabled(settings) and not dropped:
            results["pooling"] = measure_pooling(base, session, owner_url, privileges.superset_url(owner_url, settings),
                                                 reader_url, runs, progress)
        if not dropped:
            results["ranges"] = measure_ranges(base, session, owner_url, reader_url, runs, progress)
            results["targets"].update(range_targets(results["ranges"]))
        results["metrics_exporter"] = measure_exporter_round(reader_url, settings, max(runs, 10), progress)
        results["rollups"] = measure_rollups(base, session, owner_url, settings, runs, progress)
        results["rollups"]["full_rebuild_s"] = boot.get("rollups_full_seconds")
        results["targets"].update(rollup_targets(results["rollups"]))
        results = {"machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "git_revision": git_revision(), "command": command, "scale": scale, "data_dir": str(data_dir),
                   "source_indexes": source_indexes, "indexes_dropped": dropped,
                   "row_counts": counts, "bootstrap": boot,
                   "total_seconds": round(time.perf_counter() - started, 1), **results}
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2, default=str) + "\n")
        markdown_path(output).write_text(markdown(results))
        return results
    finally:
        if dropped:
            progress("building the source indexes again (db indexes --create)")
            run_cli(env, "db", "indexes", "--create", timeout=3600)
        if server is not None and not keep:
            progress("stopping Superset")
            stop_server(server)
        if not keep:
            progress("stopping the bench's PostgreSQL")
            with contextlib.suppress(Exception):
                run_cli(env, "db", "stop", timeout=120)
        elif server is not None:
            progress(f"kept: Superset on http://127.0.0.1:{web_port} "
                     f"(pid {server.pid}), PostgreSQL on {pg_port}; SPARKLIO_DATA_DIR={data_dir} "
                     f"SPARKLIO_PG_PORT={pg_port} sparklio-bi db stop")


def command_line(argv: list[str] | None = None) -> str:
    return shlex.join(["sparklio-bi", *(sys.argv[1:] if argv is None else argv)])
