"""sparklio-instrument's PostgreSQL sink (issue 32) against the test server, as the insert-only role
migration 0020 makes: what is sent equals the rows and the views; an outage (replies lost, then the
server unreachable for 30 s of the sink's clock, through a TCP proxy on loopback) costs the recording
nothing, keeps the buffer within its bound and writes no minute twice; a second writer process adds up.

The sink's clock is injected: a minute closes when the test moves it. Waits are bounded and wait for
something (a flush answered, a row committed, a writer cycle done), never for time to pass."""
from __future__ import annotations

import json
import logging
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import errors, sql
from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import migrate
from tests.conftest import free_port

SRC = Path(__file__).resolve().parent.parent / "instrument" / "src"
sys.path.insert(0, str(SRC))  # the package is a distribution of its own, not installed in the bundle's venv
from sparklio_instrument import sink as sinks  # noqa: E402

WRITER_ROLE = "sparklio_metrics_writer"
ROUTES = ("/projects/{id}", "/workflows/{id}/run", "/agents/{name}/execute", "/health", "<unmatched>")
METHODS = ("GET", "POST", "DELETE")
STATUSES = (200, 201, 304, 404, 422, 499, 500, 503)
START = (int(time.time()) // 60 - 240) * 60  # four hours ago: within any retention, clear of the present
BUCKETS = ", ".join(sinks.BUCKET_COLUMNS)


class Clock:
    """The sink's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def minute_of(moment: float) -> int:
    return int(moment // 60) * 60


def until(condition: Callable[[], object], seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.fixture(scope="module")
def metrics_db(make_database):
    """A database at head; the writers' role given a password (a SCRAM verifier): (owner URL, writer URL)."""
    owner = make_database("sink")
    migrate.apply_source_ddl(owner, config.load())
    migrate.upgrade(owner, config.load())
    password = secrets.token_urlsafe(16)
    with database.connect(owner, autocommit=True) as conn, conn.cursor() as cur:
        verifier = psycopg2.extensions.encrypt_password(password, WRITER_ROLE, conn, "scram-sha-256")
        cur.execute(sql.SQL("alter role {} password %s").format(sql.Identifier(WRITER_ROLE)), (verifier,))
    writer = make_url(owner).set(drivername="postgresql", username=WRITER_ROLE, password=password)
    return owner, writer.render_as_string(hide_password=False)


@pytest.fixture
def db(metrics_db):
    """The two URLs, the sink's tables empty and the retention back at 90 days."""
    owner, _ = metrics_db
    with database.connect(owner) as conn, conn.cursor() as cur:
        cur.execute("truncate analytics.service_request_minutes, analytics.service_metric_minutes")
        cur.execute("update analytics.service_metrics_retention set days = 90, applied_at = null")
    return metrics_db


def fetch(url: str, query: str, *args) -> list[tuple]:
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall()


# --- what was sent, added up here independently of the sink -------------------------------------

def expected_requests(sent) -> dict[tuple, tuple]:
    """(minute, route, method, status) -> (requests, seconds, le_... cumulative) of (minute, method, route, status, s)."""
    out: dict[tuple, list] = {}
    for minute, method, route, status, seconds in sent:
        row = out.setdefault((minute, route, method, status), [0, 0.0] + [0] * len(sinks.BOUNDS))
        row[0] += 1
        row[1] += seconds
        for index, bound in enumerate(sinks.BOUNDS):
            row[2 + index] += seconds <= bound
    return {key: tuple(row) for key, row in out.items()}


def table_requests(url: str, writer: str | None = None) -> dict[tuple, tuple]:
    where = "where writer = %s" if writer else ""
    rows = fetch(url, f"select minute_start, route, http_method, status_code, requests, seconds_sum, {BUCKETS} "
                      f"from analytics.service_request_minutes {where}", *([writer] if writer else []))
    return {(int(r[0].timestamp()), *r[1:4]): tuple(r[4:]) for r in rows}


def view_requests(url: str) -> dict[tuple, tuple]:
    rows = fetch(url, f"select minute_start, route, http_method, status_code, status_class, requests, seconds_sum, "
                      f"{BUCKETS}, writers from analytics.api_requests")
    for row in rows:
        assert row[4] == f"{row[3] // 100}xx"
    return {(int(r[0].timestamp()), *r[1:4]): tuple(r[5:]) for r in rows}


def same(found: dict[tuple, tuple], wanted: dict[tuple, tuple]) -> None:
    """Equal keys and counts; sums of seconds equal to the last bits a float may differ in."""
    assert sorted(found) == sorted(wanted)
    for key, row in wanted.items():
        assert found[key][0] == row[0] and found[key][2:] == row[2:], key
        assert found[key][1] == pytest.approx(row[1], rel=1e-12), key


def random_requests(sink, clock: Clock, rng: random.Random, count: int, seconds_spread: float) -> list[tuple]:
    """`count` requests over `seconds_spread` seconds of the sink's clock; returns what was sent."""
    sent = []
    for _ in range(count):
        clock.now += rng.expovariate(count / seconds_spread)
        method, route, status = rng.choice(METHODS), rng.choice(ROUTES), rng.choice(STATUSES)
        seconds = rng.choice(sinks.BOUNDS) if rng.random() < 0.05 else rng.lognormvariate(-3, 1.5)  # some on a bound
        sink.record_request(method, route, status, seconds)
        sent.append((minute_of(clock.now), method, route, status, seconds))
    return sent


def test_the_buckets_are_the_prometheus_histograms_and_the_tables_columns(db):
    from sparklio_instrument import metrics

    metrics.HTTP_DURATION.labels("GET", "/sink-bounds").observe(0.1)
    (family,) = metrics.HTTP_DURATION.collect()
    les = [float(s.labels["le"]) for s in family.samples
           if s.name.endswith("_bucket") and s.labels["endpoint"] == "/sink-bounds"]
    assert les == [*sinks.BOUNDS, float("inf")]
    owner, _ = db
    for table, columns in ((sinks.REQUESTS, sinks.REQUEST_COLUMNS), (sinks.METRICS, sinks.METRIC_COLUMNS)):
        found = fetch(owner, "select column_name from information_schema.columns where table_schema = 'analytics' "
                             "and table_name = %s order by ordinal_position", table)
        assert tuple(name for (name,) in found) == columns


def test_counts_and_durations_sent_equal_the_rows_and_the_views(db):
    owner, writer = db
    rng = random.Random(32)
    clock = Clock(START + 7)
    sink = sinks.PostgresSink(writer, interval=3600, clock=clock)
    sent = random_requests(sink, clock, rng, 20_000, 5 * 60)
    calls = record_metrics(sink, clock, rng)
    open_minute = minute_of(clock.now)
    assert sink.flush(30)
    wanted = expected_requests(sent)
    complete = {key: row for key, row in wanted.items() if key[0] < open_minute}
    same(table_requests(owner, sink.writer_id), complete)  # the open minute waits until it is complete
    assert sink.close(30)  # then close() writes it: this writer id never writes again
    same(table_requests(owner, sink.writer_id), wanted)
    same(view_requests(owner), {key: (*row, 1) for key, row in wanted.items()})
    assert sum(row[0] for row in view_requests(owner).values()) == 20_000
    assert sink.written_rows == len(wanted) + len(expected_metrics(calls)) and sink.dropped_rows == 0
    same(table_metrics(owner, "service_metric_minutes"), expected_metrics(calls))
    same(table_metrics(owner, "service_metrics"), expected_metrics(calls))


def record_metrics(sink, clock: Clock, rng: random.Random) -> list[tuple]:
    """The section 5 API over the same minutes: (minute, kind, name, labels, value) of each call."""
    clock.now -= 5 * 60
    calls = []
    for _ in range(2_000):
        clock.now += rng.expovariate(2_000 / (5 * 60))
        kind = rng.choice(("metric", "counter", "gauge", "histogram"))
        labels = {"model": rng.choice(("gpt-4o", "claude")), "brand": str(rng.randint(1, 3))} if kind != "gauge" else {}
        value = rng.randint(1, 5) if kind == "counter" else rng.lognormvariate(-1, 1.5)
        call = {"metric": sink.record_metric, "gauge": sink.set_gauge, "histogram": sink.record_histogram}
        if kind == "counter":
            sink.increment_counter(f"{kind}_total", labels, by=value)
        else:
            call[kind](f"{kind}_value", value, labels)
        calls.append((minute_of(clock.now), kind, f"{kind}_total" if kind == "counter" else f"{kind}_value",
                      labels, value))
    return calls


def expected_metrics(calls) -> dict[tuple, tuple]:
    """(minute, kind, name, labels) -> (samples, sum, min, max, last, le_... or Nones)."""
    out: dict[tuple, list] = {}
    for minute, kind, name, labels, value in calls:
        row = out.setdefault((minute, kind, name, json.dumps(labels, sort_keys=True)),
                             [0, 0.0, value, value, value] + ([0] * len(sinks.BOUNDS) if kind == "histogram" else []))
        row[0] += 1
        row[1] += value
        row[2], row[3], row[4] = min(row[2], value), max(row[3], value), value
        for index, bound in enumerate(sinks.BOUNDS if kind == "histogram" else ()):
            row[5 + index] += value <= bound
    return {key: tuple(row[:5] + (row[5:] or [None] * len(sinks.BOUNDS))) for key, row in out.items()}


def table_metrics(url: str, relation: str) -> dict[tuple, tuple]:
    rows = fetch(url, f"select minute_start, kind, name, labels, samples, value_sum, value_min, value_max, value_last, "
                      f"{BUCKETS} from analytics.{relation}")
    return {(int(r[0].timestamp()), r[1], r[2], json.dumps(r[3], sort_keys=True)): tuple(r[4:]) for r in rows}


def test_a_clock_stepping_back_records_into_the_open_minute(db):
    """A written minute is never written again: a record the clock dates before it counts in the open one."""
    owner, writer = db
    clock = Clock(START + 30)
    sink = sinks.PostgresSink(writer, interval=3600, clock=clock)
    sink.record_request("GET", "/health", 200, 0.001)
    clock.now += 60
    assert sink.flush(30)
    clock.now -= 60  # NTP stepped the clock back into the minute already written
    sink.record_request("GET", "/health", 200, 0.001)
    assert sink.close(30)
    assert table_requests(owner, sink.writer_id) == {
        (minute, "/health", "GET", 200): (1, 0.001, *[1] * len(sinks.BOUNDS)) for minute in (START, START + 60)}


SECOND_WRITER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from sparklio_instrument.sink import PostgresSink
at, requests = float(sys.argv[3]), json.loads(sys.argv[4])
sink = PostgresSink(sys.argv[2], interval=3600, clock=lambda: at)
for method, route, status, seconds in requests:
    sink.record_request(method, route, status, seconds)
print(sink.writer_id)
sys.exit(0 if sink.close(30) else 1)
"""


def test_a_second_writer_process_adds_up_rather_than_overwrites(db):
    owner, writer = db
    rng = random.Random(7)
    at = START + 90.5
    requests = [(rng.choice(METHODS), rng.choice(ROUTES), rng.choice(STATUSES), rng.lognormvariate(-3, 1)) for _ in range(500)]
    sink = sinks.PostgresSink(writer, interval=3600, clock=lambda: at)
    for request in requests:
        sink.record_request(*request)
    assert sink.close(30)
    done = subprocess.run([sys.executable, "-c", SECOND_WRITER, str(SRC), writer, str(at), json.dumps(requests)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    other = done.stdout.strip()
    assert other != sink.writer_id
    one = expected_requests([(minute_of(at), *request) for request in requests])
    same(table_requests(owner, sink.writer_id), one)
    same(table_requests(owner, other), one)  # its own rows, beside these
    same(view_requests(owner), {key: (row[0] * 2, row[1] * 2, *(n * 2 for n in row[2:]), 2) for key, row in one.items()})


def test_the_writers_role_may_only_insert(db):
    owner, writer = db
    with database.connect(owner) as conn, conn.cursor() as cur:
        cur.execute("insert into analytics.service_request_minutes values "
                    f"(now() - interval '2 hours', '/x', 'GET', 200, 'owner', 1, 0.1, {', '.join(['1'] * 14)})")
    refused = {
        "select": "select count(*) from analytics.service_request_minutes",
        "select metrics": "select count(*) from analytics.service_metric_minutes",
        "update": "update analytics.service_request_minutes set requests = 2",
        "delete": "delete from analytics.service_request_minutes",
        "truncate": "truncate analytics.service_metric_minutes",
        "the view": "select count(*) from analytics.api_requests",
        "the retention": "update analytics.service_metrics_retention set days = 1",
        "a conflict target": "insert into analytics.service_request_minutes values (now(), '/x', 'GET', 200, 'w', 1, 0.1, "
                             f"{', '.join(['1'] * 14)}) on conflict (minute_start, route, http_method, status_code, writer) "
                             "do update set requests = 5",
        "the source": "select count(*) from public.workflows",
    }
    with database.connect(writer, autocommit=True) as conn, conn.cursor() as cur:
        for name, statement in refused.items():
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(statement)
                pytest.fail(f"the writers' role could run {name}")
        with pytest.raises(errors.InvalidParameterValue):
            cur.execute("select analytics.prune_service_metrics(0)")
        cur.execute("select analytics.prune_service_metrics(1)")  # deletes no minute of the last day
        assert cur.fetchone()[0] == 0
    assert fetch(owner, "select count(*), max(requests) from analytics.service_request_minutes") == [(1, 1)]


def test_retention_prunes_the_old_minutes_and_the_views_hide_them(db):
    owner, writer = db
    now = time.time()
    clock = Clock(now - 100 * 86400)
    sink = sinks.PostgresSink(writer, interval=3600, retention_days=30, clock=clock)
    sink.record_request("GET", "/projects/{id}", 200, 0.02)
    clock.now = now - 86400
    sink.record_request("GET", "/projects/{id}", 200, 0.03)
    clock.now = now
    assert sink.flush(30)  # both written, then the first prune of this writer deleted the older
    assert sink.written_rows == 2
    assert [row[0] for row in table_requests(owner).values()] == [1]
    assert list(table_requests(owner)) == [(minute_of(now - 86400), "/projects/{id}", "GET", 200)]
    assert fetch(owner, "select days from analytics.service_metrics_retention") == [(30,)]
    with database.connect(owner) as conn, conn.cursor() as cur:  # a row past the retention, not yet pruned
        cur.execute("insert into analytics.service_request_minutes values "
                    f"(date_trunc('minute', now()) - interval '31 days', '/old', 'GET', 200, 'w', 1, 0.1, "
                    f"{', '.join(['1'] * 14)})")
    assert len(table_requests(owner)) == 2
    assert list(view_requests(owner)) == [(minute_of(now - 86400), "/projects/{id}", "GET", 200)]
    assert sink.close(30)


class Proxy:
    """A TCP proxy on loopback before PostgreSQL that forwards, loses the server's replies, or is down
    (its port closed and every connection through it cut)."""

    def __init__(self, target_port: int) -> None:
        self.target, self.port, self.mode = ("127.0.0.1", target_port), free_port(), "forward"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        self.mode = "forward"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        self.mode = "down"
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with _quietly():
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by down()
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "down"), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, direction: str) -> None:
        with _quietly():
            while data := source.recv(65536):
                if self.mode == "forward" or direction == "up":  # lost replies: the server hears, the client waits
                    target.sendall(data)
        with _quietly():
            target.shutdown(socket.SHUT_RDWR)


class _quietly:
    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        return kind is not None and issubclass(kind, OSError)


def keys_in(minute: int, prefix: str, count: int) -> list[tuple]:
    """`count` distinct (method, route, status) in a minute's recording order."""
    return [("GET", f"/{prefix}/{n}", 200) for n in range(count)]


def test_an_outage_costs_the_recording_nothing_keeps_the_bound_and_writes_each_minute_once(db, settings, caplog):
    owner, writer = db
    caplog.set_level(logging.INFO, logger="sparklio_instrument.sink")
    proxy = Proxy(settings.pg_port)
    through_proxy = make_url(writer).set(port=proxy.port).render_as_string(hide_password=False)
    clock = Clock(START + 50)  # the 50th second of minute m0
    m0 = minute_of(clock.now)
    m1, m2, m3, m4 = (m0 + 60 * n for n in range(1, 5))
    sink = sinks.PostgresSink(through_proxy, interval=0.05, max_rows=300, statement_timeout=2, connect_timeout=2,
                              clock=clock)
    sent, most = [], 0

    def send(minute: int, keys: list[tuple], times: int = 1) -> None:
        nonlocal most
        for method, route, status in keys:
            for n in range(times):
                sink.record_request(method, route, status, 0.001 * (n + 1))
                sent.append((minute, method, route, status, 0.001 * (n + 1)))
            most = max(most, sink.buffered_rows)

    send(m0, keys_in(m0, "a", 100), times=3)
    clock.now = m1 + 5
    assert sink.flush(30)
    send(m1, keys_in(m1, "b", 100))

    # the server's replies are lost: m1 is committed, the writer waits for an acknowledgement that never comes
    proxy.mode = "lost replies"
    clock.now = m2 + 5
    until(lambda: fetch(owner, "select count(*) from analytics.service_request_minutes where minute_start = "
                               "to_timestamp(%s)", m1)[0][0] == 100, 30, "m1 committed behind the lost reply")
    written = sink.written_rows
    latencies = []
    for n in range(5_000):  # meanwhile the requests go on: no record waits for the writer
        started = time.perf_counter()
        sink.record_request("GET", f"/c/{n % 50}", 200, 0.002)
        latencies.append(time.perf_counter() - started)
    sent += [(m2, "GET", f"/c/{n % 50}", 200, 0.002) for n in range(5_000)]
    assert sink.written_rows == written, "the records finished while the writer was still waiting for PostgreSQL"
    p50, p99 = statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
    print(f"record_request while the writer is stuck: p50 {p50 * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us")
    assert p50 < 0.001
    proxy.mode = "forward"
    assert sink.flush(30)  # m1 sent again after the timeout: on conflict, nothing added
    same(table_requests(owner, sink.writer_id), expected_requests(s for s in sent if s[0] < m2))

    # the server unreachable for 30 s of the sink's clock, m2 and m3 more rows than the bound holds
    clock.now = m2 + 35
    proxy.down()
    send(m2, keys_in(m2, "d", 120))
    clock.now = m3 + 5
    cycles = sink.cycles
    until(lambda: sink.cycles >= cycles + 2, 30, "a writer cycle that closed m2")
    send(m3, keys_in(m3, "e", 200))
    assert sink.flush(0.2) is False
    assert (most, sink.buffered_rows, sink.dropped_rows, sink.refused_records) == (300, 300, 70, 0)

    proxy.up()
    clock.now = m4 + 5
    assert sink.flush(30)
    dropped = {(m2, route, method, status) for method, route, status in
               [("GET", f"/c/{n}", 200) for n in range(50)] + keys_in(m2, "d", 20)}  # the oldest 70 of m2
    wanted = expected_requests(sent)
    same(table_requests(owner, sink.writer_id), {key: row for key, row in wanted.items() if key not in dropped})
    assert sink.written_rows == len(wanted) - 70
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("dropping the oldest" in line for line in warnings) == 1
    assert sum("writing to PostgreSQL failed" in line for line in warnings) == 2  # once per outage
    assert sink.close(30)
    proxy.down()


# --- the middleware feeds the sink: the example app under gunicorn, two uvicorn workers --------------------

def test_requests_through_the_example_app_land_in_the_sink_table(db, tmp_path_factory, tmp_path):
    """PrometheusMiddleware(app, sink=...) as examples/sparklio_api wires it from SPARKLIO_SERVICE_METRICS_URL:
    every request the app answers is one count under its route template, method and status; each worker writes
    its own rows (its writer id), and gunicorn's graceful stop writes the open minute (close() at exit)."""
    from tests.test_instrument_prometheus import ExampleApi, example_venv

    owner, writer = db
    api = ExampleApi(example_venv(tmp_path_factory), tmp_path, workers=2,
                     env={"SPARKLIO_SERVICE_METRICS_URL": writer, "SPARKLIO_SERVICE_METRICS_INTERVAL": "0.5"})
    plan = [  # (method, path, status the client sees, route template, times)
        *[("GET", f"/projects/{n}", 200, "/projects/{project_id}", 1) for n in range(1, 31)],
        ("GET", "/projects/0", 404, "/projects/{project_id}", 7),
        *[("GET", f"/items/item-{n}", 200, "/items/{item_id}", 1) for n in range(40)],
        ("POST", "/workflows/3/run?fail=true", 500, "/workflows/{workflow_id}/run", 5),
        ("POST", "/workflows/4/run", 200, "/workflows/{workflow_id}/run", 2),
        ("POST", "/agents/copywriter/execute?crash=true", 500, "/agents/{name}/execute", 3),
        ("DELETE", "/projects/5", 405, "/projects/{project_id}", 2),
        ("GET", "/admin/brands/7", 200, "/admin/brands/{brand_id}", 4),
        ("GET", "/no/such/page", 404, "<unmatched>", 6),
    ]
    expected: dict[tuple, int] = {}
    try:
        until(api.ready, 120, f"the example app answering /metrics (log: {api.log})")
        for method, path, status, route, times in plan:
            for _ in range(times):
                assert api.request(method, path) == status, (method, path)
            expected[(route, method, status)] = expected.get((route, method, status), 0) + times
    finally:
        code = api.stop()
    assert code == 0, api.log.read_text()[-3000:]

    def counted(relation: str) -> dict[tuple, int]:
        return {(route, method, status): int(n) for route, method, status, n in fetch(
            owner, f"select route, http_method, status_code, sum(requests) from analytics.{relation} "
                   "where route <> '/metrics' group by 1, 2, 3")}  # /metrics: the readiness polls

    assert counted("service_request_minutes") == expected
    assert counted("api_requests") == expected
    assert sum(expected.values()) == 30 + 7 + 40 + 5 + 2 + 3 + 2 + 4 + 6
    (writers,) = fetch(owner, "select count(distinct writer) from analytics.service_request_minutes")[0]
    assert 1 <= writers <= 2  # one id per worker process that answered
    (seconds,) = fetch(owner, "select sum(seconds_sum) from analytics.service_request_minutes "
                              "where route = '/workflows/{workflow_id}/run'")[0]
    assert 0 < seconds < 60
