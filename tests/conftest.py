"""Shared fixtures: a real PostgreSQL (the bundle's embedded server, in a temporary data dir and
on a free port of its own, so the tests never touch the user's .data/), seeded databases, and
one bootstrapped Superset served over HTTP for every test module that needs it."""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.postgres import database, embedded_pg
from sparklio_bi.superset.rest import TokenSession, form_login  # noqa: F401 - the tests log in as the bench does
from sparklio_bi.warehouse import migrate

TEST_SCALE = 3.0
TEST_SEED = 7
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(os.environ.get("SPARKLIO_SCREENSHOTS", ROOT / "test-artifacts" / "screenshots"))
ADMIN_PASSWORD = "test-admin-password"
CLI = [sys.executable, "-m", "sparklio_bi.cli"]
# Small limits, so the tests see PostgreSQL cancel a query and SQL Lab cut a result quickly.
READER_STATEMENT_TIMEOUT = "5s"
SQL_MAX_ROW = 20000  # also caps chart queries: 5.1 draws a day of minutes per connection state


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> config.Settings:
    """The embedded server of the test session; its settings are in os.environ for subprocesses."""
    data_dir = tmp_path_factory.mktemp("sparklio-data")
    for name in config.variables():  # nothing of an install in this environment: defaults, then these
        os.environ.pop(name, None)
    os.environ.update(SPARKLIO_DATA_DIR=str(data_dir), SPARKLIO_PG_PORT=str(free_port()),
                      SPARKLIO_POOLER_PORT=str(free_port()),  # PgBouncer (installed by make test) before the server
                      SPARKLIO_READER_STATEMENT_TIMEOUT=READER_STATEMENT_TIMEOUT,
                      SUPERSET_SQL_MAX_ROW=str(SQL_MAX_ROW),
                      # many logins from 127.0.0.1 in a minute; the default limit has its own test
                      SUPERSET_AUTH_RATE_LIMIT="1000 per minute",
                      # a late row reaches the charts sooner (the refresher, then Superset's data
                      # cache); the benchmark measures the defaults, 30 s each
                      SPARKLIO_REFRESH_SECONDS="10", SUPERSET_DATA_CACHE_TIMEOUT="10")
    current = config.load()
    embedded_pg.start(current)
    yield current
    embedded_pg.stop(current)


@pytest.fixture(scope="session")
def make_database(settings):
    """Factory: a new empty database on the test server; returns its SQLAlchemy URL."""
    created = []

    def make(prefix: str = "t") -> str:
        url = make_url(embedded_pg.server_url(settings)).set(database=f"{prefix}_{uuid.uuid4().hex[:8]}")
        text = url.render_as_string(hide_password=False)
        database.ensure_database(text)
        created.append(url.database)
        return text

    yield make
    with database.connect(embedded_pg.server_url(settings, "postgres"), autocommit=True) as conn:
        with conn.cursor() as cur:
            for name in created:
                cur.execute(f'drop database if exists "{name}" with (force)')


def seed_database(url: str, scale: float = TEST_SCALE, seed: int = TEST_SEED) -> None:
    """Source tables, demo data and the views at head, then the API's demo traffic (dashboard 9)."""
    from sparklio_bi.warehouse import seed as seeding

    migrate.apply_source_ddl(url, config.load())
    seeding.seed(url, config.load(), scale, seed)
    migrate.upgrade(url, config.load())
    seeding.seed_api_traffic(url, config.load(), scale, seed)  # its tables exist only once migrated


@pytest.fixture(scope="session")
def seeded_url(make_database, tmp_path_factory) -> str:
    """One seeded database at head, shared by read-only tests."""
    url = make_database("seeded")
    seed_database(url)
    sample_system(url, tmp_path_factory.mktemp("seeded-redis"))
    return url


def sample_system(url: str, folder: Path) -> None:
    """Two rounds of `sparklio-bi collect` with a real Redis (the sessions have no REDIS_URL), so
    every chart of System Resources has samples from the start: Redis and Celery (5.10-5.12), and
    a network rate (5.9), which takes two samples."""
    from dataclasses import replace

    from sparklio_bi.warehouse import collect

    with running_redis(folder) as (redis_url, _):
        host = collect.HostSampler()
        for _ in range(2):
            collect.collect_once(url, replace(config.load(), redis_url=redis_url), host)
    # the host charts' default window ends at the last whole second (reference_host.py): a test in the
    # same second as the samples would see none of them. Into the next second (at most 1 s).
    done = time.time()
    time.sleep(math.floor(done) + 1.001 - done)


def cli(*args, check=True, timeout=900, env=None):
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ)
    if check and done.returncode != 0:
        raise AssertionError(f"sparklio-bi {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def bootstrapped(settings, tmp_path_factory):
    """`sparklio-bi bootstrap --no-serve`, twice (the second must change nothing; it tells its
    steps as JSON lines, as `sparklio-bi bench` reads them)."""
    os.environ["SUPERSET_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    started = time.monotonic()
    first = cli("bootstrap", "--no-serve", "--scale", "3")
    first_seconds = time.monotonic() - started
    url = embedded_pg.server_url(settings)
    before = fingerprint(url)
    started = time.monotonic()
    second = cli("bootstrap", "--no-serve", "--scale", "3", "--progress", "json")  # as the benchmark runs it
    second_seconds = time.monotonic() - started
    sample_system(url, tmp_path_factory.mktemp("bootstrap-redis"))
    return {"first": first, "second": second, "first_seconds": first_seconds,
            "second_seconds": second_seconds, "url": url, "fingerprints": (before, fingerprint(url))}


# What a bootstrap must leave as it found it: Superset's objects (content, not timestamps), and
# the source rows (checksums); rows of each, and an md5 of their content.
FINGERPRINT_SUPERSET = {
    "dbs": "database_name, sqlalchemy_uri",
    "tables": "uuid, table_name, schema, main_dttm_col",
    "table_columns": "uuid, column_name, type, is_dttm, description",
    "sql_metrics": "uuid, metric_name, expression, d3format",
    "slices": "uuid, slice_name, viz_type, params, query_context",
    "dashboards": "uuid, dashboard_title, position_json, json_metadata",
    "ab_user": "username, email, active",
    "ab_role": "name",
    "ab_permission_view_role": "permission_view_id, role_id",
    "row_level_security_filters": "name, clause, group_key",
}


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    from sparklio_bi.warehouse import views

    found = {}
    metadata = make_url(url).set(database=config.SUPERSET_DATABASE).render_as_string(hide_password=False)
    with database.connect(metadata) as conn, conn.cursor() as cur:
        for table, columns in FINGERPRINT_SUPERSET.items():
            row = f"row({columns})::text"
            cur.execute(f"select count(*), md5(coalesce(string_agg({row}, '|' order by {row}), '')) from {table}")
            found[f"superset.{table}"] = cur.fetchone()
    with database.connect(url) as conn, conn.cursor() as cur:
        for table in views.SOURCE_TABLES:
            cur.execute(f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from public.{table} t")
            found[f"public.{table}"] = cur.fetchone()
    return found


def artifact(name: str) -> Path:
    """test-artifacts/<name>, prefixed by the xdist worker (gw0-, gw1-...) when there are several:
    each worker runs a session of its own (its own PostgreSQL, bootstrap and Superset)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return SCREENSHOTS.parent / (f"{worker}-{name}" if worker else name)


def start_server(*args: str, log_name: str = "superset-server.log",
                 env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """`sparklio-bi serve` on a free port, once it answers /health: (process, base URL)."""
    port = free_port()
    log = open(artifact(log_name), "wb")
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_for_health(base, proc, 120, f"sparklio-bi serve (see {artifact(log_name)})")
    return proc, base


def wait_for_health(base: str, proc: subprocess.Popen, seconds: float, what: str, tick: float = 1) -> None:
    """Until `base`/health answers 200; fails when `proc` exits first or after `seconds` (then
    `proc` is stopped)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert proc.poll() is None, f"{what} exited early"
        time.sleep(tick)
    proc.terminate()
    raise AssertionError(f"{what} did not answer /health within {seconds:g} s")


@pytest.fixture(scope="session")
def server(bootstrapped):
    proc, base = start_server("--collect-interval", "5")
    yield base
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="session")
def api(server):
    """The admin, logged in through the REST API (a bearer token)."""
    return TokenSession(server, "admin", ADMIN_PASSWORD)


def api_list(api, kind: str) -> list[dict]:
    query = "(page_size:100)"
    result = api.get(f"{api.base}/api/v1/{kind}/?q={query}", timeout=30)
    assert result.status_code == 200, result.text
    return result.json()["result"]


def database_uri(api, name: str = "Sparklio Analytics") -> str:
    """The SQLAlchemy URI (password masked) of the Superset database called `name`."""
    (found,) = [d["id"] for d in api_list(api, "database") if d["database_name"] == name]
    return api.get(f"{api.base}/api/v1/database/{found}/connection", timeout=30).json()["result"]["sqlalchemy_uri"]


def chart_ids(api) -> dict[str, int]:
    """Chart name -> its id, of the charts `api`'s user may see."""
    return {chart["slice_name"]: chart["id"] for chart in api_list(api, "chart")}


def dataset_ids(api) -> dict[str, int]:
    """Dataset name -> its id."""
    return {dataset["table_name"]: dataset["id"] for dataset in api_list(api, "dataset")}


def csrf_header(api) -> dict:
    return {"X-CSRFToken": api.get(f"{api.base}/api/v1/security/csrf_token/", timeout=30).json()["result"]}


@contextlib.contextmanager
def running_redis(folder: Path):
    """Debian's redis-server on a free loopback port, nothing saved: (URL, client)."""
    import redis

    binary = shutil.which("redis-server")
    assert binary, "redis-server (Debian's redis-server package) is needed; make test installs it"
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        yield url, client
    finally:
        proc.terminate()
        proc.wait(10)
