"""What sparklio-instrument (issue 32) costs Sparklio's service, measured, and what its PostgreSQL sink
writes: benchmarks/instrument-overhead.json.

Three variants of one trivial Starlette app (`GET /items/{id}`, a plain-text answer): **bare**, with the
**middleware** (Prometheus metrics only) and with the middleware **and the sink** (its writer thread
writing every 5 s into a real PostgreSQL while requests are measured).

1. *Added latency per request*, in process: the ASGI app called directly (no sockets, no HTTP parsing:
   what is left is the app and the middleware), `--calls` requests per variant, interleaved in blocks
   of 1,000 in a shuffled order so drift and the other core's load fall on all three alike; p50 and
   p99 of each, and the added p50/p99 (variant minus bare). Target: at most 0.1 ms p50 and 0.5 ms p99.
2. *Throughput and latency over HTTP*: each variant under uvicorn (one worker, httptools), loaded by
   wrk (Debian's package; `-t1 -c16`, random ids from a Lua script, `--seconds` per run), the
   variants alternated for `--rounds` rounds; the median requests/s and wrk's p50/p99. Target: each
   variant at least 90 % of the bare app's requests/s.
3. *The sink's cost at 1,000 requests per second and above*: during the sink variant's wrk runs, the
   statements the sink ran (pg_stat_statements is not needed: the sink's own counters of writer
   cycles and rows written), the rows and bytes the table grew by per minute, and from them the
   writes per minute and bytes per day. The sink aggregates per minute, route, method and status
   code: rows and bytes per minute depend on how many of those keys a minute sees, not on the rate.

Run it with `make benchmark-instrument` (a venv of its own under .data-bench-instrument/ with the
package, its sink extra, FastAPI and uvicorn; the bundle's embedded PostgreSQL in the same folder):

    .venv/bin/python benchmarks/instrument_overhead.py --calls 50000 --seconds 10 --rounds 3
"""
from __future__ import annotations

import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click
import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from sparklio_bi.quality.bench.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "instrument-overhead.json"
WORK = ROOT / ".data-bench-instrument"
WRITER_ROLE = "sparklio_metrics_writer"
VARIANTS = ("bare", "middleware", "middleware+sink")

# The app of every variant: in-process timing (`python APP time ...`) or served (`python APP serve ...`).
APP = r'''
import asyncio, json, os, random, sys, time
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def item(request):
    return PlainTextResponse("ok")


def make(variant):
    app = Starlette(routes=[Route("/items/{item_id}", item), Route("/projects/{project_id}", item)])
    sink = None
    if variant != "bare":
        from sparklio_instrument import PrometheusMiddleware
        if variant == "middleware+sink":
            from sparklio_instrument import sink as sinks
            sink = sinks.start(sinks.PostgresSink(os.environ["SINK_URL"], interval=5.0))
        app.add_middleware(PrometheusMiddleware, sink=sink)
    return app, sink


async def _receive():
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message):
    pass


def scope(path):
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}


async def timing(calls, block, seed):
    rng = random.Random(seed)
    apps = {variant: make(variant) for variant in ("bare", "middleware", "middleware+sink")}
    samples = {variant: [] for variant in apps}
    for variant, (app, _) in apps.items():  # warm-up: imports, route compilation, first series
        for i in range(block):
            await app(scope(f"/items/{i}"), _receive, _send)
    clock = time.perf_counter_ns
    for _ in range(calls // block):
        order = list(apps)
        rng.shuffle(order)
        for variant in order:
            app, out = apps[variant][0], samples[variant]
            for _ in range(block):
                path = f"/items/{rng.randrange(1_000_000)}"
                started = clock()
                await app(scope(path), _receive, _send)
                out.append(clock() - started)
    sink = apps["middleware+sink"][1]
    sink.flush()
    return {"samples_ns": samples, "sink": {"written_rows": sink.written_rows, "cycles": sink.cycles,
                                             "dropped_rows": sink.dropped_rows}}


if sys.argv[1] == "time":
    print(json.dumps(asyncio.run(timing(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))))
else:  # serve VARIANT PORT
    import uvicorn
    app, sink = make(sys.argv[2])
    if sink is not None:
        import signal, threading

        def report(*_):  # SIGUSR1: the sink's counters on stderr, one JSON line
            sink.flush()
            print("SINK " + json.dumps({"written_rows": sink.written_rows, "cycles": sink.cycles,
                                        "dropped_rows": sink.dropped_rows}), file=sys.stderr, flush=True)
        signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=report).start())
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False,
                http="httptools", loop="uvloop")
'''

WRK_SCRIPT = """math.randomseed(42)
request = function() return wrk.format("GET", "/items/" .. math.random(1, 1000000)) end
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def progress(line: str) -> None:
    click.echo(f"[{datetime.now():%H:%M:%S}] {line}", err=True)


def instrument_venv() -> Path:
    """A venv of the package with its sink extra, Starlette's server and wrk's target (made once)."""
    venv = WORK / "venv"
    if not (venv / ".ready").exists():
        progress("making the package's venv (once): sparklio-instrument[sink], uvicorn[standard]")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        source = WORK / "instrument-src"
        shutil.rmtree(source, ignore_errors=True)
        shutil.copytree(ROOT / "instrument", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        subprocess.run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", f"{source}[sink]",
                        "uvicorn[standard]"], check=True)
        (venv / ".ready").touch()
    return venv / "bin" / "python"


def sink_database() -> tuple[str, str]:
    """The bundle's embedded PostgreSQL in WORK, a database at head: (owner URL, writer URL)."""
    from sparklio_bi import config
    from sparklio_bi.postgres import database, embedded_pg
    from sparklio_bi.warehouse import migrate

    os.environ.setdefault("SPARKLIO_DATA_DIR", str(WORK / "data"))
    running = embedded_pg.status(config.load())
    os.environ.setdefault("SPARKLIO_PG_PORT", str(running.port if running.running else free_port()))
    settings = config.load()
    owner = database.analytics_url(settings)  # starts the server when it is not running
    migrate.apply_source_ddl(owner, settings)
    migrate.upgrade(owner, settings)
    password = secrets.token_urlsafe(16)
    with database.connect(owner, autocommit=True) as conn, conn.cursor() as cur:
        verifier = psycopg2.extensions.encrypt_password(password, WRITER_ROLE, conn, "scram-sha-256")
        cur.execute(sql.SQL("alter role {} password %s").format(sql.Identifier(WRITER_ROLE)), (verifier,))
        cur.execute("truncate analytics.service_request_minutes")
    writer = make_url(owner).set(drivername="postgresql", username=WRITER_ROLE, password=password)
    return owner, writer.render_as_string(hide_password=False)


def table_figures(owner: str) -> tuple[int, int]:
    """(rows, bytes with indexes and TOAST) of the requests table."""
    from sparklio_bi.postgres import database

    with database.connect(owner, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("select count(*), pg_total_relation_size('analytics.service_request_minutes') "
                    "from analytics.service_request_minutes")
        rows, size = cur.fetchone()
    return rows, size


def in_process(python: Path, app: Path, env: dict, calls: int) -> dict:
    progress(f"in process: {calls:,} requests per variant, blocks of 1,000 in shuffled order")
    done = subprocess.run([python, app, "time", str(calls), "1000", "42"], env=env, capture_output=True,
                          text=True, check=True)
    measured = json.loads(done.stdout)
    result = {}
    bare = measured["samples_ns"]["bare"]
    for variant, samples in measured["samples_ns"].items():
        us = {"p50_us": percentile(samples, 0.5) / 1000, "p99_us": percentile(samples, 0.99) / 1000,
              "calls": len(samples)}
        if variant != "bare":
            us["added_p50_us"] = round(us["p50_us"] - percentile(bare, 0.5) / 1000, 2)
            us["added_p99_us"] = round(us["p99_us"] - percentile(bare, 0.99) / 1000, 2)
        result[variant] = {k: round(v, 2) if isinstance(v, float) else v for k, v in us.items()}
        progress(f"  {variant:<16} p50 {result[variant]['p50_us']:7.1f} us  p99 {result[variant]['p99_us']:7.1f} us"
                 + (f"  added p50 {us['added_p50_us']:+.1f} us, p99 {us['added_p99_us']:+.1f} us" if variant != "bare" else ""))
    result["sink"] = measured["sink"]
    return result


WRK_LINE = re.compile(r"Requests/sec:\s+([0-9.]+)")
WRK_LATENCY = re.compile(r"^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$", re.M)


def wrk(port: int, seconds: int, script: Path) -> dict:
    done = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", str(script),
                           f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {f"p{q}_ms": round(float(v) * scale[unit], 3) for q, v, unit in WRK_LATENCY.findall(done.stdout)}
    requests = int(re.search(r"([0-9]+) requests in", done.stdout).group(1))
    return {"rps": float(WRK_LINE.search(done.stdout).group(1)), "requests": requests, **latency}


def serve(python: Path, app: Path, env: dict, variant: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([python, app, "serve", variant, str(port)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if proc.poll() is not None:
            raise click.ClickException(f"the {variant} app exited: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise click.ClickException(f"the {variant} app did not listen within 60 s")


def sink_counters(proc: subprocess.Popen) -> dict:
    import signal

    proc.send_signal(signal.SIGUSR1)
    for line in proc.stderr:
        if line.startswith("SINK "):
            return json.loads(line[5:])
    raise click.ClickException("the sink variant exited before reporting its counters")


def over_http(python: Path, app: Path, env: dict, owner: str, seconds: int, rounds: int) -> tuple[dict, dict]:
    script = WORK / "random-ids.lua"
    script.write_text(WRK_SCRIPT)
    runs: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    sink_runs = []
    for number in range(1, rounds + 1):
        for variant in VARIANTS:
            proc, port = serve(python, app, env, variant)
            try:
                wrk(port, 2, script)  # warm-up
                before_rows, before_bytes = table_figures(owner)
                if variant == "middleware+sink":
                    before = sink_counters(proc)
                started = time.monotonic()
                run = wrk(port, seconds, script)
                if variant == "middleware+sink":
                    after = sink_counters(proc)  # flushed: what the run recorded is in the table
                    elapsed = time.monotonic() - started
                    rows, size = table_figures(owner)
                    sink_runs.append({"rps": run["rps"], "seconds": round(elapsed, 1),
                                      "writer_cycles": after["cycles"] - before["cycles"],
                                      "rows_written": after["written_rows"] - before["written_rows"],
                                      "table_rows_added": rows - before_rows, "table_bytes_added": size - before_bytes,
                                      "dropped_rows": after["dropped_rows"]})
            finally:
                proc.terminate()
                proc.wait(30)
            runs[variant].append(run)
            progress(f"  round {number}/{rounds} {variant:<16} {run['rps']:9,.0f} req/s  p50 {run.get('p50_ms', 0):6.2f} ms"
                     f"  p99 {run.get('p99_ms', 0):6.2f} ms")
    median = {}
    for variant, measured in runs.items():
        ordered = sorted(measured, key=lambda r: r["rps"])
        middle = ordered[len(ordered) // 2]
        def mid(figure: str, measured=measured) -> float:
            return sorted(r.get(figure, 0) for r in measured)[len(measured) // 2]

        median[variant] = {"rps_median": middle["rps"], "p50_ms_median": mid("p50_ms"), "p99_ms_median": mid("p99_ms"),
                           "runs": measured}
    for variant in VARIANTS[1:]:
        median[variant]["rps_vs_bare"] = round(median[variant]["rps_median"] / median["bare"]["rps_median"], 3)
    return median, {"runs": sink_runs,
                    "note": "the sink writes a minute's rows once the minute has closed: a run shorter than a "
                            "minute shows the writer's cycles (every 5 s, plus the flushes this benchmark asks "
                            "for) but rarely its rows, so rows and bytes per day are only meaningful with "
                            "--seconds 120 or more; rows per minute are the keys (route, method, status) a "
                            "minute sees, whatever the rate"}


@click.command(help=__doc__.split("\n\n")[0] + "\n\nExample: .venv/bin/python benchmarks/instrument_overhead.py "
                                                "--calls 50000 --seconds 10 --rounds 3")
@click.option("--calls", type=click.IntRange(min=1000), default=50_000, show_default=True,
              help="In-process requests per variant.")
@click.option("--seconds", type=click.IntRange(min=2), default=10, show_default=True, help="Seconds per wrk run.")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True, help="wrk rounds per variant.")
def main(calls: int, seconds: int, rounds: int) -> None:
    if not shutil.which("wrk"):
        raise click.ClickException("wrk is not installed: apt-get install wrk (Debian's package)")
    WORK.mkdir(exist_ok=True)
    python = instrument_venv()
    owner, writer = sink_database()
    app = WORK / "bench_app.py"
    app.write_text(APP)
    # the working tree's package, ahead of the venv's copy (made once): what is measured is what is here
    env = {**os.environ, "SINK_URL": writer, "PYTHONPATH": str(ROOT / "instrument" / "src")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    started = time.monotonic()
    timing = in_process(python, app, env, calls)
    progress(f"over HTTP: uvicorn, wrk -t1 -c16, {seconds} s per run, {rounds} rounds")
    http, sink = over_http(python, app, env, owner, seconds, rounds)
    for run in sink["runs"]:
        per_minute = 60 / run["seconds"]
        run["writes_per_minute"] = round(run["writer_cycles"] * per_minute, 1)
        run["bytes_per_day"] = round(run["table_bytes_added"] * per_minute * 1440)
    targets = {
        "added_p50": {"target": "at most 0.1 ms p50 added (in process)", "limit_us": 100,
                      "worst_us": max(timing[v]["added_p50_us"] for v in VARIANTS[1:])},
        "added_p99": {"target": "at most 0.5 ms p99 added (in process)", "limit_us": 500,
                      "worst_us": max(timing[v]["added_p99_us"] for v in VARIANTS[1:])},
        "throughput": {"target": "at least 90 % of the bare app's requests/s (uvicorn, wrk)", "limit": 0.9,
                       "worst": min(http[v]["rps_vs_bare"] for v in VARIANTS[1:])},
    }
    for name, target in targets.items():
        target["met"] = (target["worst"] >= target["limit"]) if name == "throughput" else target["worst_us"] <= target["limit_us"]
    result = {
        "command": f".venv/bin/python benchmarks/instrument_overhead.py --calls {calls} --seconds {seconds} --rounds {rounds}",
        "what": __doc__.split("\n\n")[1:4],
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "in_process": timing, "over_http": http, "sink": sink, "targets": targets,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    progress(f"wrote {OUT.relative_to(ROOT)}: " + ", ".join(f"{k} {'met' if t['met'] else 'MISSED'}" for k, t in targets.items()))


if __name__ == "__main__":
    main()
