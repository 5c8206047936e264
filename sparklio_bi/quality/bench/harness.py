"""A bundle of its own for the bench: data dir, embedded PostgreSQL, bootstrap and serve as children."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from sparklio_bi import config
from sparklio_bi.config import PROJECT_ROOT
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import indexes
from sparklio_bi.warehouse.views import SOURCE_TABLES

DEFAULT_DIR = PROJECT_ROOT / ".data-bench"
DEFAULT_OUTPUT = PROJECT_ROOT / "benchmarks" / "results.json"
MARKDOWN_NAME = "RESULTS-dashboards.md"
NO_INDEXES_OUTPUT = PROJECT_ROOT / "benchmarks" / "results-no-indexes.json"


def markdown_path(output: Path) -> Path:
    """The Markdown tables beside `output`: RESULTS-dashboards.md for results.json, else its name in .md."""
    return output.with_name(MARKDOWN_NAME) if output.name == DEFAULT_OUTPUT.name else output.with_suffix(".md")


def drop_source_indexes(owner_url: str, settings: config.Settings) -> list[str]:
    """Drop the indexes of warehouse/indexes.py from the bench's own source tables (only primary
    keys left, as on a database that never had them); returns the names dropped."""
    names = [found.existing for found in indexes.survey(owner_url, settings) if found.existing]
    with database.connect(owner_url, autocommit=True) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute(f'drop index if exists {settings.source_schema}."{name}"')
    return names
CLI = [sys.executable, "-m", "sparklio_bi.cli"]
# Every variable of the user's install (all that Settings reads): the bench's children run on the
# defaults, on a data dir and server of their own
UNSET = tuple(config.variables())
Progress = Callable[[str], None]


class BenchError(ExpectedError):
    """An expected failure (a port taken, bootstrap failed): one line for the user."""


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_model": cpu,
            "cores": os.cpu_count(), "memory_gib": round(memory / 2**30, 1)}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def git_revision() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "HEAD") or "unknown"
    return f"{head} dirty" if git("status", "--porcelain", "--untracked-files=no") else head


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_environment(data_dir: Path, pg_port: int) -> dict[str, str]:
    """The children's environment: the bench's own data dir and server, nothing of the user's."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(SPARKLIO_DATA_DIR=str(data_dir), SPARKLIO_PG_PORT=str(pg_port), PYTHONUNBUFFERED="1",
               SPARKLIO_POOLER_PORT=str(pg_port + 1000 if pg_port + 1000 <= 65535 else pg_port - 1000))
    return env


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(_read(str(path)).strip().splitlines()[-lines:])


def _peak_rss_mib(pid: int) -> float | None:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class BootstrapEvents:
    """What `bootstrap --progress json` told, line by line: when each step started (seconds from
    the first line read), whether it seeded, and when the seeded row counts arrived."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.steps: dict[int, float] = {}
        self.seeded = False
        self.seed_done: float | None = None

    def feed(self, line: str) -> str | None:
        """Take one line of stdout; returns what to show a person (None: not an event)."""
        try:
            event = json.loads(line)
        except ValueError:
            return None  # not an event: a library's own print
        if event["event"] == "step":
            self.steps[event["step"]] = time.perf_counter() - self.started
            self.seeded = self.seeded or event["outcome"] == "seeding"
            return f"  {event['step']}/{event['of']} {event['title']}" + (f": {event['detail']}" if event["detail"] else "")
        if event["event"] == "note":
            if "rows" in event and self.seed_done is None:  # the seeded row counts: seeding is over
                self.seed_done = time.perf_counter() - self.started
            return f"      {event['text']}"
        return f"  ready in {event['seconds']:.0f}s" if event["event"] == "ready" else None


def bootstrap(env: dict, data_dir: Path, scale: float, reseed: bool, progress: Progress) -> dict:
    """`sparklio-bi bootstrap --scale N --no-serve --progress json` (with --reseed when asked or
    when the data dir holds another scale), its output kept in bootstrap.log; each step's start
    is timed from its event, so the migrate and seed steps are timed, and the process's peak RSS
    is read when the seeded row counts arrive (seeding is over)."""
    marker = data_dir / "bench-scale"
    previous = marker.read_text().strip() if marker.exists() else None
    reseed = reseed or (previous is not None and float(previous) != scale)
    args = ["bootstrap", "--scale", f"{scale:g}", "--no-serve", "--progress", "json", *(["--reseed"] if reseed else [])]
    log_path = data_dir / "bootstrap.log"
    progress(f"sparklio-bi {' '.join(args)}  (output in {log_path})")
    events, rss_after_seed = BootstrapEvents(), None
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
        try:
            for line in proc.stdout:
                log.write(line)
                shown = events.feed(line)
                if events.seed_done is not None and rss_after_seed is None:
                    rss_after_seed = _peak_rss_mib(proc.pid) or 0.0
                if shown:
                    progress(shown)
            proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait(30)
            raise
    seconds = time.perf_counter() - events.started
    if proc.returncode != 0:
        raise BenchError(f"bootstrap failed (status {proc.returncode}); the end of {log_path}:\n{_tail(log_path)}")
    marker.write_text(f"{scale:g}\n")
    steps, seeded = events.steps, events.seeded
    result = {"seconds": round(seconds, 2), "seeded": seeded, "reseed": reseed,
              "migrate_seconds": round(steps[4] - steps[3], 3) if {3, 4} <= steps.keys() else None,
              "migrate_note": ("step 3/7: migrations before seeding, on empty tables" if seeded and previous is None
                               else "step 3/7 on existing data (at head: nothing to migrate)"),
              "superset_seconds": round(seconds - steps[5], 2) if 5 in steps else None}
    if seeded and 4 in steps and events.seed_done is not None:
        result.update(seed_seconds=round(events.seed_done - steps[4], 2),
                      seed_peak_rss_mib=round(rss_after_seed, 1) if rss_after_seed else None)
    return result


def run_cli(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise BenchError(f"sparklio-bi {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


def serve(env: dict, data_dir: Path, port: int, progress: Progress) -> subprocess.Popen:
    """`sparklio-bi serve` in the background, once /health answers."""
    log_path = data_dir / "serve.log"
    progress(f"sparklio-bi serve --port {port} --collect-interval 30  (output in {log_path})")
    log = open(log_path, "wb")
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--collect-interval", "30"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"sparklio-bi serve exited with status {proc.returncode}; the end of {log_path}:\n"
                             f"{_tail(log_path)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/health", timeout=5).status_code == 200:
                return proc
        time.sleep(1)
    stop_server(proc)
    raise BenchError(f"Superset did not answer {base}/health within 180 s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to `sparklio-bi serve` (it stops gunicorn and the collector), then its group."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def row_counts(owner_url: str) -> dict[str, int]:
    with database.connect(owner_url) as conn, conn.cursor() as cur:
        counts = {}
        for table in SOURCE_TABLES:
            cur.execute(f"select count(*) from public.{table}")
            counts[table] = cur.fetchone()[0]
        return counts
