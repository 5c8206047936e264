"""Where a forced chart request's time goes inside Superset: py-spy samples of the gunicorn
workers of the bench's install while one client loops over the 29 forced chart data requests,
each sample put in the first group (in the order below) that one of its frames matches.

Issue 16 asks for this split where Superset's own code keeps a target out of reach (the 29
forced requests 3x faster than the reference SQL). Run it on the bench's data after
`sparklio-bi bench` (it keeps its install in --dir):

    .venv/bin/pip install py-spy==0.4.3
    .venv/bin/python benchmarks/request_split.py --dir /tmp/big --seconds 50

It starts `sparklio-bi serve` on that install (Superset reading through PgBouncer, as the bench
measures), writes benchmarks/request-split.json and prints the split. `--from-raw FILE` groups
an existing `py-spy record --format raw` file instead (no server).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUTPUT = ROOT / "benchmarks" / "request-split.json"
# (group, frame pattern): a sample is in the first group one of its frames matches
GROUPS = (
    ("PostgreSQL connections: opened, pinged, reset (engines.py keeps them; Superset's NullPool opened "
     "two per query, the query's and Database.get_inspector's)",
     re.compile(r"Pool\.connect \(|Inspector\._construct \(|_ConnectionRecord\.|_finalize_fairy|"
                r"psycopg2/__init__\.py|ping_connection")),
    ("the audit log (event logger)",
     re.compile(r"AbstractEventLogger\.log_context|sparklio_bi/superset/event_log\.py|DBEventLogger\.log \(")),
    ("the chart's own SQL (execute and fetch)",
     re.compile(r"Database\._execute_sql_with_mutation_and_logging|EngineSpec\.fetch_data \(")),
    ("permission checks and row-level security", re.compile(r"security/manager\.py|raise_for_access|get_rls_filters")),
    ("SQL parsing and Jinja (sqlglot, templates)", re.compile(r"sqlglot/|jinja2/|jinja_context\.py|superset/sql/parse\.py")),
    ("Superset's metadata ORM queries", re.compile(r"sqlalchemy/orm/")),
    ("pandas post-processing", re.compile(r"pandas/|numpy/|pyarrow/")),
)
REST = "the rest of Flask, marshmallow, date parsing and JSON"


def group_of(stack: str) -> str:
    for name, pattern in GROUPS:
        if pattern.search(stack):
            return name
    return REST


def split(raw: Path) -> dict:
    """The share of samples per group in a `py-spy record --format raw` file (idle threads out)."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "handle_request" not in stack:
            continue  # gunicorn's idle loop and other threads: not a request's time
        group = group_of(stack)
        counts[group] = counts.get(group, 0) + int(count)
        total += int(count)
    return {"samples": total, "groups": {name: round(100 * n / total, 1)
                                         for name, n in sorted(counts.items(), key=lambda kv: -kv[1])}}


def _requests(base: str, session, seconds: float, out: dict) -> None:
    from sparklio_bi.quality.bench.stats import stats

    ids = [c["id"] for c in session.get(f"{base}/api/v1/chart/?q=(page_size:100)", timeout=30).json()["result"]]
    end, times = time.monotonic() + seconds, []
    while time.monotonic() < end:
        for chart_id in ids:
            started = time.perf_counter()
            response = session.get(f"{base}/api/v1/chart/{chart_id}/data/?force=true", timeout=60)
            response.raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    out.update(requests=len(times), p50_ms=stats(times)["p50"])


def record(data_dir: Path, seconds: float, rate: int) -> tuple[Path, dict]:
    """Serve the bench's install, sample its workers while requests loop; (raw file, request figures)."""
    import psutil

    from sparklio_bi import config
    from sparklio_bi.postgres import embedded_pg
    from sparklio_bi.quality.bench import harness
    from sparklio_bi.superset.rest import TokenSession

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy==0.4.3")
    running = embedded_pg.status(config.load(harness.bench_environment(data_dir, 5433)))
    env = harness.bench_environment(data_dir, running.port if running.running else harness.free_port())
    port = harness.free_port()
    harness.run_cli(env, "assets", "import")  # the install's databases at this server's (and pooler's) ports
    server = harness.serve(env, data_dir, port, print)
    try:
        base = f"http://127.0.0.1:{port}"
        session = TokenSession(base, "admin", (data_dir / "superset-admin-password").read_text().strip())
        _requests(base, session, 5, {})  # warm-up: every worker has imported what a request needs
        master = next(p for p in psutil.Process(server.pid).children(recursive=True) if "gunicorn" in " ".join(p.cmdline())
                      and p.parent().pid == server.pid)
        raw = Path(tempfile.mkdtemp()) / "request-split.raw"
        spying = subprocess.Popen([spy, "record", "--pid", str(master.pid), "--subprocesses", "--duration", str(int(seconds)),
                                   "--rate", str(rate), "--format", "raw", "--output", str(raw), "--nonblocking"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        figures: dict = {}
        loop = threading.Thread(target=_requests, args=(base, session, seconds, figures))
        loop.start()
        loop.join()
        if spying.wait(120) != 0:
            sys.exit(f"py-spy failed: {spying.stderr.read().decode()[-500:]}")
        return raw, figures
    finally:
        harness.stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="the bench's install (sparklio-bi bench --dir)")
    parser.add_argument("--seconds", type=float, default=50)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--from-raw", type=Path, help="group this py-spy raw file instead of recording")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    if args.from_raw:
        raw, figures, how = args.from_raw, {}, f"grouped from {args.from_raw}"
    elif args.dir:
        raw, figures = record(args.dir, args.seconds, args.rate)
        how = (f"sparklio-bi serve on {args.dir} (Superset through PgBouncer); py-spy record --subprocesses on "
               f"gunicorn at {args.rate} Hz for {args.seconds:.0f} s while one client looped over the 29 forced "
               "chart data requests (?force=true)")
    else:
        parser.error("give --dir (record) or --from-raw (group a recording)")
    from sparklio_bi.quality.bench.harness import git_revision, machine

    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_revision": git_revision(),
              "machine": machine(), "how": how, **figures, **split(raw),
              "grouping": "each sample in the first group one of its frames matches, in this order: "
                          + "; ".join(name for name, _ in GROUPS) + f"; else {REST}"}
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for name, share in result["groups"].items():
        print(f"{share:5.1f} %  {name}")
    print(f"{result['samples']} samples; written to {args.output}")


if __name__ == "__main__":
    main()
