"""Superset during an outage of what it needs (issue 31, findings 5 and 6): its metadata database
cut (a serve of its own whose SUPERSET_DATABASE_URL goes through a loopback TCP proxy the test
closes) and its Redis stopped (a redis-server of its own, shut down and started again). /health
fails while either is down and answers again after; the login and chart APIs answer 503 JSON,
not Superset's HTML 500 page; the log gets one line when the outage starts and one when it ends,
not a traceback per request; doctor names the Redis that is down."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from sparklio_bi.postgres import database
from sparklio_bi.superset import health, secret_key
from tests.conftest import ADMIN_PASSWORD, TokenSession, artifact, free_port, running_redis, start_server
from tests.test_doctor import doctor
from tests.test_serve import wait_for

REQUESTS = 50  # failing requests during an outage...
MAX_NEW_LINES = 10  # ... add fewer log lines than this (one web process: the outage's start line)
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class LoopbackProxy:
    """TCP on a free loopback port to `target_port`: cut() refuses new connections and drops the
    open ones (as a stopped server does), restore() forwards again on the same port."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port, self._listener = listener.getsockname()[1], listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        with self._lock:
            for sock in self._open:
                _shut(sock)
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                if self._listener is not listener:
                    return
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _shut(source)
            _shut(sink)
            with self._lock:
                self._open.discard(source)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class ServerLog:
    """The lines a serve's log gained since `mark()`."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def new_lines(self) -> list[str]:
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace").splitlines()


def status(base: str, path: str = "/health") -> int:
    try:
        return requests.get(f"{base}{path}", timeout=10).status_code
    except requests.RequestException:
        return 0


def chart_request(session: TokenSession, name: str = "Intent distribution") -> dict:
    """A chart's own query context, as the dashboard posts it to /api/v1/chart/data."""
    charts = session.get(f"{session.base}/api/v1/chart/?q=(page_size:100)", timeout=30).json()["result"]
    (chart,) = [c for c in charts if c["slice_name"] == name]
    found = session.get(f"{session.base}/api/v1/chart/{chart['id']}", timeout=30).json()["result"]
    return json.loads(found["query_context"])


def assert_json_503(response: requests.Response, what: str) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json()
    assert what in body["message"] and body["errors"][0]["message"] == body["message"], body
    assert response.headers["Retry-After"]


def failing_requests(base: str, session: TokenSession, query: dict, what: str) -> None:
    """REQUESTS requests of the login and chart APIs, each a 503 in JSON (also when the client
    accepts HTML: Superset sent its HTML page to any `*/*`)."""
    login = {"username": "admin", "password": ADMIN_PASSWORD, "provider": "db"}
    for n in range(REQUESTS // 2):
        headers = BROWSER if n % 5 == 0 else {}
        assert_json_503(requests.post(f"{base}/api/v1/security/login", json=login, headers=headers, timeout=30), what)
        assert_json_503(session.post(f"{base}/api/v1/chart/data", json=query, headers=headers, timeout=30), what)


def assert_logged_once(lines: list[str]) -> None:
    """The outage said once, no traceback, fewer than MAX_NEW_LINES lines."""
    assert len(lines) < MAX_NEW_LINES, "\n".join(lines)
    assert [line for line in lines if "health:outage:" in line] != [], "\n".join(lines)
    assert len([line for line in lines if "health:outage" in line]) == 1, "\n".join(lines)
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines)


@pytest.fixture(scope="module")
def metadata_proxy(bootstrapped, settings):
    """(serve's base URL, its log, the proxy): a serve whose metadata database is reached only
    through the proxy (the analytics one as usual); one web process, so its lines are counted."""
    url = make_url(database.superset_metadata_url(settings, start=False))
    proxy = LoopbackProxy(url.port)
    env = dict(os.environ, SUPERSET_DATABASE_URL=url.set(port=proxy.port).render_as_string(hide_password=False),
               SUPERSET_SECRET_KEY=secret_key.key_file(settings).read_text().strip())
    proc, base = start_server("--collect-interval", "0", "--workers", "1", log_name="outage-metadata.log", env=env)
    yield base, ServerLog(artifact("outage-metadata.log")), proxy
    proc.terminate()
    proc.wait(30)


def test_the_metadata_database_down_fails_health_answers_json_and_is_logged_once(metadata_proxy):
    base, log, proxy = metadata_proxy
    session = TokenSession(base, "admin", ADMIN_PASSWORD)
    query = chart_request(session)
    assert session.post(f"{base}/api/v1/chart/data", json=query, timeout=60).status_code == 200
    assert status(base) == 200
    log.mark()
    proxy.cut()
    try:
        wait_for(lambda: status(base) == 503, 60, "/health failing with the metadata database cut")
        said = requests.get(f"{base}/health", timeout=10).text
        assert said.startswith("unavailable: the metadata database does not answer"), said
        failing_requests(base, session, query, "metadata database")
        assert_json_503(session.get(f"{base}/api/v1/chart/", timeout=30), "metadata database")
        page = requests.get(f"{base}/login/", headers=BROWSER, timeout=30)
        assert page.status_code == 503 and "metadata database" in page.text
        assert page.headers["Content-Type"].startswith("text/html")
        assert_logged_once(log.new_lines())
        code, lines = doctor(base)
        assert code == 1 and "/health answered 503: unavailable: the metadata database" in lines["superset"], lines
    finally:
        proxy.restore()
    wait_for(lambda: status(base) == 200, 60, "/health answering again")
    wait_for(lambda: any("health:outage over after" in line for line in log.new_lines()), 60, "the outage's end logged")
    wait_for(lambda: session.post(f"{base}/api/v1/chart/data", json=query, timeout=60).status_code == 200, 60,
             "the chart answering again")
    lines = log.new_lines()
    assert len([line for line in lines if "health:outage" in line]) == 2, "\n".join(lines)
    assert "the metadata database answers again" in next(line for line in lines if "outage over" in line)


@pytest.fixture(scope="module")
def redis_server(bootstrapped, tmp_path_factory):
    """(serve's base URL, its log, Redis's URL, a function that starts Redis again): a serve
    whose caches and login counters are a Redis of its own; no Celery (compose's web node)."""
    folder = tmp_path_factory.mktemp("outage-redis")
    with running_redis(folder) as (url, client):
        env = dict(os.environ, REDIS_URL=url)
        proc, base = start_server("--collect-interval", "0", "--workers", "1", "--no-celery",
                                  log_name="outage-redis.log", env=env)
        restarted = []

        def start_again():
            port = str(make_url(url).port)
            restarted.append(subprocess.Popen([shutil.which("redis-server"), "--port", port, "--bind", "127.0.0.1",
                                               "--save", "", "--dir", str(folder)], stdout=subprocess.DEVNULL))

        try:
            yield base, ServerLog(artifact("outage-redis.log")), url, client, start_again
        finally:
            proc.terminate()
            proc.wait(30)
            for again in restarted:
                again.terminate()
                again.wait(10)


def test_redis_down_fails_health_answers_json_is_logged_once_and_doctor_names_it(redis_server):
    import redis

    base, log, url, client, start_again = redis_server
    session = TokenSession(base, "admin", ADMIN_PASSWORD)
    query = chart_request(session)
    assert session.post(f"{base}/api/v1/chart/data", json=query, timeout=60).status_code == 200
    assert status(base) == 200
    log.mark()
    client.shutdown(nosave=True)
    where = health.redis_address(url)
    wait_for(lambda: status(base) == 503, 60, "/health failing with Redis stopped")
    assert f"Redis at {where} does not answer" in requests.get(f"{base}/health", timeout=10).text
    failing_requests(base, session, query, "cache (Redis)")
    assert_logged_once(log.new_lines())
    code, lines = doctor(base, env=dict(os.environ, REDIS_URL=url))
    assert lines["redis"].startswith(f"FAIL  redis: Redis at {where} does not answer ("), lines["redis"]
    assert "start Redis or correct REDIS_URL" in lines["redis"]
    assert "/health answered 503: unavailable: Redis at" in lines["superset"], lines["superset"]
    start_again()
    wait_for(lambda: _pings(redis.Redis.from_url(url)), 30, "Redis started again")
    wait_for(lambda: status(base) == 200, 60, "/health answering again")
    wait_for(lambda: any("health:outage over after" in line for line in log.new_lines()), 60, "the outage's end logged")
    assert requests.post(f"{base}/api/v1/security/login", timeout=30, json={
        "username": "admin", "password": ADMIN_PASSWORD, "provider": "db"}).status_code == 200
    assert session.post(f"{base}/api/v1/chart/data", json=query, timeout=60).status_code == 200
    code, lines = doctor(base, env=dict(os.environ, REDIS_URL=url))
    assert lines["redis"].startswith("ok    redis: Redis ") and f"at {where} answers" in lines["redis"], lines["redis"]


def _pings(client) -> bool:
    import redis

    try:
        return client.ping()
    except redis.RedisError:
        return False


def test_an_error_that_is_no_outage_goes_to_supersets_catch_all(settings):
    """In-process, on a Flask app standing in for Superset (its catch-all registered after
    install, as Superset's init_views does): a statement timeout is not an outage, a refused
    connection is; each from a real PostgreSQL."""
    import flask

    metadata = database.superset_metadata_url(settings, start=False)
    app = flask.Flask("stand-in")
    app.config["SQLALCHEMY_DATABASE_URI"] = metadata
    health.install(app)

    @app.route("/health")
    def ok():  # Superset's health view
        return "OK"

    @app.errorhandler(Exception)
    def catch_all(error):
        return {"caught": type(error).__name__}, 500

    @app.route("/api/v1/slow")
    def slow():
        with create_engine(metadata).connect() as conn:
            conn.exec_driver_sql("set statement_timeout = 10; select pg_sleep(1)")

    @app.route("/api/v1/refused")
    def refused():
        create_engine(make_url(metadata).set(port=free_port())).connect()

    try:
        client = app.test_client()
        assert client.get("/api/v1/slow").get_json() == {"caught": "OperationalError"}
        answer = client.get("/api/v1/refused")
        assert answer.status_code == 503 and "metadata database" in answer.get_json()["message"]
        assert client.get("/health").get_data(as_text=True) == "OK"  # the metadata database answers
    finally:
        for handler in logging.getLogger().handlers:
            for found in [f for f in handler.filters if isinstance(f, health.OutageFilter)]:
                handler.removeFilter(found)
