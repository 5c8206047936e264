"""sparklio-instrument, the Prometheus side (issue 32): the light distribution installed alone into a fresh
venv, and the example app under gunicorn with two uvicorn workers on loopback. Requests go over keep-alive
connections whose worker is known (the worker process holding the connection's server side), so each
worker's share is known and each worker's /metrics can be read."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
INSTRUMENT = ROOT / "instrument"
EXAMPLE = ROOT / "examples" / "sparklio_api"
REQUESTS = "sparklio_http_requests_total"


def until(condition: Callable[[], object], seconds: float, what: str):
    """Poll `condition` until it returns something truthy (returned), failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv holding the package (installed from a copy: no build/ left in the tree) and the example's
    server; beside it, SQLAlchemy in a directory of its own (fetched meanwhile) for the pool test."""
    tmp = tmp_path_factory.mktemp("instrument")
    sqlalchemy = subprocess.Popen([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                   "--target", tmp / "sqlalchemy", "sqlalchemy"])
    source = shutil.copytree(INSTRUMENT, tmp / "instrument", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", tmp / "venv"], check=True)
    subprocess.run([tmp / "venv" / "bin" / "pip", "install", "-q", "--disable-pip-version-check", source,
                    "fastapi", "uvicorn", "gunicorn", "httpx"], check=True)
    assert sqlalchemy.wait() == 0
    return tmp / "venv" / "bin"


def test_the_package_installs_alone_with_its_two_dependencies(venv):
    listed = json.loads(subprocess.run([venv / "pip", "list", "--format=json"], capture_output=True, text=True,
                                       check=True).stdout)
    names = {package["name"].lower().replace("_", "-") for package in listed}
    assert {"sparklio-instrument", "prometheus-client", "starlette"} <= names
    assert names.isdisjoint({"apache-superset", "sqlalchemy", "flask", "psycopg2-binary", "sparklio-bi"})
    probe = ("import importlib.metadata as m, json, sys, sparklio_instrument;"
             "print(json.dumps([m.requires('sparklio-instrument'), 'sparklio_instrument.sink' in sys.modules]))")
    requires, sink_imported = json.loads(subprocess.run([venv / "python", "-c", probe], capture_output=True, text=True,
                                                        check=True).stdout)
    assert requires == ["prometheus-client>=0.17", "starlette>=0.27", 'psycopg2-binary>=2.9; extra == "sink"']
    assert not sink_imported
    superset = subprocess.run([venv / "python", "-c", "import superset"], capture_output=True, text=True)
    assert superset.returncode != 0 and "No module named 'superset'" in superset.stderr


def test_the_start_of_gunicorn_deletes_only_prometheus_client_files(venv, tmp_path):
    earlier = ["counter_101.db", "histogram_101.db", "gauge_livesum_101.db", "gauge_all_102.db", "summary_7.db"]
    others = ["notes.txt", "counter.db", "backup"]
    for name in earlier + others[:2]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "backup").mkdir()
    script = "import sys; from pathlib import Path; from sparklio_instrument.multiprocess import wipe; " \
             "print(sorted(p.name for p in wipe(Path(sys.argv[1]))))"
    left = subprocess.run([venv / "python", "-c", script, tmp_path], capture_output=True, text=True, check=True).stdout
    assert left.strip() == str(sorted(others))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(others)


class Server:
    """The example app under gunicorn: `-w 2 -k uvicorn.workers.UvicornWorker`, one multiprocess directory."""

    def __init__(self, venv: Path, tmp: Path):
        self.port, self.directory, self.log = free_port(), tmp / "multiproc", tmp / "gunicorn.log"
        # Absent: on_starting creates it, and nothing may write there before (the master imports the hooks)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self.directory)}
        self.master = subprocess.Popen(
            [venv / "gunicorn", "-c", EXAMPLE / "gunicorn.conf.py", "-b", f"127.0.0.1:{self.port}", "-w", "2",
             "-k", "uvicorn.workers.UvicornWorker"], env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def workers(self) -> list[int]:
        return sorted(child.pid for child in psutil.Process(self.master.pid).children())

    def connect(self) -> HTTPConnection:
        """A keep-alive connection, its `.worker` the pid of the worker that accepted it."""
        connection = HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.connect()
        port = connection.sock.getsockname()[1]

        def owner():
            for pid in self.workers():
                with contextlib.suppress(psutil.NoSuchProcess):  # a worker exiting is simply not the owner
                    if any(c.raddr and c.raddr.port == port for c in psutil.Process(pid).net_connections("tcp")):
                        return pid
        connection.worker = until(owner, 10, f"a worker accepting the connection from port {port}")
        return connection

    def connect_to(self, worker: int) -> HTTPConnection:
        """A connection accepted by `worker` (the others opened on the way are closed)."""
        def attempt():
            connection = self.connect()
            if connection.worker == worker:
                return connection
            connection.close()
        return until(attempt, 30, f"a connection accepted by worker {worker}")

    def samples(self, connection: HTTPConnection | None = None) -> dict[tuple, float]:
        """/metrics as {(name, ((label, value), ...)): value}, scraped over `connection` or a new one."""
        connection = connection or self.connect()
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        return parse(response.read().decode())

    def ready(self) -> bool:
        """Both workers forked and one of them answering /metrics (gunicorn gone fails at once)."""
        assert self.master.poll() is None, f"gunicorn exited: {self.log.read_text()[-3000:]}"
        try:
            return len(self.workers()) == 2 and bool(self.samples())
        except OSError:
            return False

    def stop(self) -> None:
        self.master.terminate()
        try:
            self.master.wait(15)
        except subprocess.TimeoutExpired:
            self.master.kill()
            self.master.wait()


def parse(text: str) -> dict[tuple, float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def series(samples: dict[tuple, float], name: str, **labels: str) -> dict[tuple, float]:
    """The samples of `name` whose labels include `labels`."""
    return {key: value for key, value in samples.items()
            if key[0] == name and set(labels.items()) <= set(key[1])}


def value(samples: dict[tuple, float], name: str, **labels: str) -> float:
    """The one sample of `name` with exactly `labels` (0 when absent, as Prometheus reads a missing counter)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def worker_counts(server: Server, worker: int) -> dict[str, float]:
    """`worker`'s own share of sparklio_http_requests_total by endpoint, read from its file alone."""
    own = server.directory / f"counter_{worker}.db"
    if not own.exists():  # a worker that has counted nothing yet
        return {}
    alone = server.directory.parent / f"alone-{worker}"
    shutil.rmtree(alone, ignore_errors=True)
    alone.mkdir()
    shutil.copy(own, alone)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))
    counts: dict[str, float] = {}
    for sample in (sample for family in registry.collect() for sample in family.samples if sample.name == REQUESTS):
        counts[sample.labels["endpoint"]] = counts.get(sample.labels["endpoint"], 0) + sample.value
    return counts


@pytest.fixture(scope="module")
def server(venv, tmp_path_factory):
    running = Server(venv, tmp_path_factory.mktemp("gunicorn"))
    try:
        until(running.ready, 60, f"gunicorn with two workers answering /metrics (log: {running.log})")
        yield running
    finally:
        running.stop()


def request(connection: HTTPConnection, method: str, path: str) -> int:
    connection.request(method, path)
    response = connection.getresponse()
    response.read()
    return response.status


def test_ten_thousand_ids_make_one_series_summed_over_both_workers(server):
    assert not list(server.directory.glob(f"*_{server.master.pid}.db")), "the master made metrics (the hooks' import)"
    workers = server.workers()
    connections = [server.connect_to(worker) for worker in workers for _ in range(4)]

    def send(index: int) -> list[int]:
        return [request(connections[index], "GET", f"/items/{index}-{n}") for n in range(1250)]

    with ThreadPoolExecutor(len(connections)) as pool:
        statuses = [status for answered in pool.map(send, range(len(connections))) for status in answered]
    assert statuses == [200] * 10_000

    items = {"method": "GET", "endpoint": "/items/{item_id}", "status_code": "200"}
    for worker in workers:  # each worker served its 5,000, and its /metrics reports both workers' 10,000
        # the middleware counts a request after its answer has gone out: the client can hold the last
        # answer a moment before its count is in (4,999 seen at load 6)
        until(lambda worker=worker: worker_counts(server, worker)["/items/{item_id}"] == 5000, 30,
              f"worker {worker} counting its 5,000")
        scraped = server.samples(server.connect_to(worker))
        assert series(scraped, REQUESTS, endpoint="/items/{item_id}") == {(REQUESTS, tuple(sorted(items.items()))): 10_000}
        assert not [key for key in series(scraped, REQUESTS) if "/items/" in dict(key[1])["endpoint"]
                    and dict(key[1])["endpoint"] != "/items/{item_id}"]
        assert value(scraped, "sparklio_http_request_duration_seconds_count", method="GET", endpoint="/items/{item_id}") \
            == 10_000
        assert value(scraped, "sparklio_http_requests_in_progress", method="GET", endpoint="/items/{item_id}") == 0


def test_methods_status_codes_errors_and_unmatched_paths_are_counted(server):
    before = server.samples()
    sent = [  # (method, path, the status the client sees, the endpoint label, the method label)
        ("GET", "/projects/5", 200, "/projects/{project_id}", "GET"),
        ("GET", "/projects/0", 404, "/projects/{project_id}", "GET"),
        ("DELETE", "/projects/5", 405, "/projects/{project_id}", "DELETE"),
        ("BREW", "/projects/5", 405, "/projects/{project_id}", "OTHER"),
        ("POST", "/agents/copywriter/execute?crash=true", 500, "/agents/{name}/execute", "POST"),
        ("POST", "/workflows/3/run?fail=true", 500, "/workflows/{workflow_id}/run", "POST"),
        ("POST", "/workflows/4/run", 200, "/workflows/{workflow_id}/run", "POST"),
        ("GET", "/admin/brands/7", 200, "/admin/brands/{brand_id}", "GET"),
        ("GET", "/admin/nothing/here", 404, "<unmatched>", "GET"),
        ("GET", "/wp-login.php", 404, "<unmatched>", "GET"),
        ("GET", "/projects/5/../../etc/passwd", 404, "<unmatched>", "GET"),
    ]
    for method, path, status, _, _ in sent:  # a new connection each: the server closes one after an exception
        connection = server.connect()
        assert request(connection, method, path) == status, (method, path)
        connection.close()
    after = server.samples()

    expected = {}
    for _, _, status, endpoint, method in sent:
        key = (REQUESTS, tuple(sorted({"method": method, "endpoint": endpoint, "status_code": str(status)}.items())))
        expected[key] = expected.get(key, 0) + 1
    grown = {key: after[key] - before.get(key, 0) for key in series(after, REQUESTS)
             if after[key] != before.get(key, 0) and dict(key[1])["endpoint"] != "/metrics"}
    assert grown == expected

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("sparklio_workflows_total", status="failed") == 1
    assert delta("sparklio_workflows_total", status="completed") == 1
    assert value(after, "sparklio_active_workflows") == 0
    assert delta("sparklio_agent_executions_total", agent_name="reviewer", status="success") == 2  # one per workflow
    assert delta("sparklio_agent_duration_seconds_count", agent_name="reviewer", model="gpt-4o-mini") == 2
    assert delta("sparklio_llm_tokens_total", model="gpt-4o-mini", direction="in") >= 2 * 200


def test_a_killed_worker_is_replaced_and_no_count_is_lost(server):
    doomed = server.connect()
    doomed.request("POST", "/workflows/9/run?seconds=120")  # held open in that worker until it dies
    workflows = {"method": "POST", "endpoint": "/workflows/{workflow_id}/run"}
    before = until(lambda: value(s := server.samples(), "sparklio_active_workflows") == 1 and
                   value(s, "sparklio_http_requests_in_progress", **workflows) == 1 and s,
                   30, "the held workflow seen as active and in progress")
    survivor = next(pid for pid in server.workers() if pid != doomed.worker)
    survivor_share = worker_counts(server, survivor)

    os.kill(doomed.worker, signal.SIGKILL)
    replaced = until(lambda: len(w := server.workers()) == 2 and doomed.worker not in w and w, 60,
                     "gunicorn replacing the killed worker")
    doomed.close()
    fresh = server.connect_to(next(pid for pid in replaced if pid != survivor))
    after = server.samples(fresh)

    def counted(samples: dict[tuple, float]) -> dict[tuple, float]:
        return {key: v for key, v in series(samples, REQUESTS).items() if dict(key[1])["endpoint"] != "/metrics"}

    assert counted(after) == counted(before)  # the killed worker's counters stay in the sum, the survivor's too
    served = {endpoint: n for endpoint, n in worker_counts(server, survivor).items() if endpoint != "/metrics"}
    assert served == {endpoint: n for endpoint, n in survivor_share.items() if endpoint != "/metrics"}
    assert value(after, "sparklio_active_workflows") == 0  # the dead worker's gauges went with it
    assert value(after, "sparklio_http_requests_in_progress", **workflows) == 0


# Run in the venv (Starlette's TestClient over the real app, single-process mode), with SQLAlchemy on the
# path from a side directory, so the venv's own package list stays the package's.
IN_PROCESS = '''
import json, sys, tempfile
from fastapi import APIRouter, FastAPI
from sqlalchemy import create_engine
from sqlalchemy.pool import QueuePool
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient
import sparklio_instrument as si

app = FastAPI()
si.instrument(app)
v1 = APIRouter(prefix="/v1")
v1.add_api_route("/brands/{brand_id}/campaigns/{campaign_id}", lambda brand_id, campaign_id: {})
app.include_router(v1)
app.mount("/legacy", Starlette(routes=[Route("/files/{name:path}", lambda request: PlainTextResponse("x"))]))
app.mount("/static", StaticFiles(directory=tempfile.mkdtemp()))
client = TestClient(app, raise_server_exceptions=False)
for method, path in json.loads(sys.argv[1]):
    client.request(method, path)

si.agent_execution("copywriter", "gpt-4o", "success", 2.5)
si.agent_execution("copywriter", "gpt-4o", "error", 0.4)
si.llm_tokens("gpt-4o", 1200, 300)
with si.workflow_run() as run:
    run.status = "needs_review"
try:
    with si.workflow_run():
        raise ValueError("a step failed")
except ValueError:
    pass
si.workflow_started()
engine = create_engine("sqlite://", poolclass=QueuePool, pool_size=3, max_overflow=2)
si.track_pool(engine, "app")
with engine.connect(), engine.connect():
    held = client.get("/metrics").text
released = client.get("/metrics").text
print(json.dumps({"held": held, "released": released}))
'''


@pytest.fixture(scope="module")
def in_process(venv) -> dict[str, dict[tuple, float]]:
    sent = [["GET", "/v1/brands/1/campaigns/2"], ["GET", "/v1/brands/3/campaigns/4"], ["POST", "/v1/brands/1/campaigns/2"],
            ["GET", "/legacy/files/a/b.txt"], ["GET", "/legacy/files/c.txt"], ["GET", "/legacy/other"],
            ["GET", "/static/site.css"], ["GET", "/static/img/logo.png"], ["GET", "/random/1"], ["PUT", "/random/2"]]
    out = subprocess.run([venv / "python", "-c", IN_PROCESS, json.dumps(sent)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(venv.parent.parent / "sqlalchemy")}, check=True).stdout
    return {name: parse(text) for name, text in json.loads(out).items()}


def test_included_routers_and_mounted_apps_are_labelled_by_their_full_template(in_process):
    counted = {tuple(dict(key[1])[label] for label in ("method", "endpoint", "status_code")): n
               for key, n in series(in_process["held"], REQUESTS).items() if dict(key[1])["endpoint"] != "/metrics"}
    assert counted == {
        ("GET", "/v1/brands/{brand_id}/campaigns/{campaign_id}", "200"): 2,
        ("POST", "/v1/brands/{brand_id}/campaigns/{campaign_id}", "405"): 1,
        ("GET", "/legacy/files/{name}", "200"): 2,
        ("GET", "<unmatched>", "404"): 2,  # /legacy/other (the mount matched, none of its routes) and /random/1
        ("PUT", "<unmatched>", "404"): 1,
        ("GET", "/static/{path}", "404"): 2,  # an app without routes keeps its mount's template
    }


def test_the_helpers_count_agents_workflows_tokens_and_the_pool(in_process):
    held, released = in_process["held"], in_process["released"]
    assert value(held, "sparklio_agent_executions_total", agent_name="copywriter", status="success") == 1
    assert value(held, "sparklio_agent_executions_total", agent_name="copywriter", status="error") == 1
    assert value(held, "sparklio_agent_duration_seconds_count", agent_name="copywriter", model="gpt-4o") == 2
    assert value(held, "sparklio_agent_duration_seconds_sum", agent_name="copywriter", model="gpt-4o") == 2.9
    assert value(held, "sparklio_agent_duration_seconds_bucket", agent_name="copywriter", model="gpt-4o", le="0.5") == 1
    assert value(held, "sparklio_llm_tokens_total", model="gpt-4o", direction="in") == 1200
    assert value(held, "sparklio_llm_tokens_total", model="gpt-4o", direction="out") == 300
    assert value(held, "sparklio_workflows_total", status="needs_review") == 1
    assert value(held, "sparklio_workflows_total", status="failed") == 1
    assert value(held, "sparklio_active_workflows") == 1  # workflow_started without its workflow_finished
    assert value(held, "sparklio_db_connection_pool_size", pool="app") == 3
    assert value(held, "sparklio_db_connection_pool_checked_out", pool="app") == 2
    assert value(released, "sparklio_db_connection_pool_checked_out", pool="app") == 0
