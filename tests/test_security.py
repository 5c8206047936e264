"""Least privilege, proven on the real thing: the read-only role Superset holds (directly over
psycopg2 and through SQL Lab's API), PostgreSQL's statement timeout, SQL Lab's row limit, the
viewer / analyst / brand roles logged in for real, the login rate limit, and secrets."""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
import pytest
import requests
import yaml
from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.postgres import database, privileges
from sparklio_bi.quality.reference import CHART_FILES, CHARTS, DASHBOARDS
from tests.conftest import (
    ADMIN_PASSWORD,
    READER_STATEMENT_TIMEOUT,
    SQL_MAX_ROW,
    api_list,
    artifact,
    chart_ids,
    cli,
    database_uri,
    dataset_ids,
    form_login,
    start_server,
)
from tests.test_cli import run_cli
from tests.test_superset import (
    ASSETS,
    assert_chart_matches_reference,
    assert_dashboard_renders,
    chart_titles,
    csrf_header,
    open_browser,
)

ROOT = Path(__file__).resolve().parent.parent
PEOPLE = {"viewer": ("vera", "vera-password-1"), "analyst": ("anna", "anna-password-1")}
BRAND_USER = ("bram", "bram-password-1")


def refused_statements(tmp_dir: Path) -> dict[str, str]:
    """What nobody holding the reader role may do: name -> SQL."""
    return {
        "delete": "delete from analytics.users",
        "update": "update analytics.users set email = 'x'",
        "insert": "insert into analytics.system_samples values (now(), 'x', '', 1)",
        "drop": "drop view analytics.users",
        "create": "create table analytics.stolen (a int)",
        "create temp": "create temp table stolen (a int)",
        "select into": "select * into stolen from analytics.users",
        "data-modifying CTE": "with gone as (delete from public.users returning id) select count(*) from gone",
        "copy to file": f"copy (select 1) to '{tmp_dir / 'copied.txt'}'",
        "copy to program": f"copy (select 1) to program 'touch {tmp_dir / 'program.txt'}'",
        "set_config": "select set_config('statement_timeout', '0', false)",
        "pg_read_file": "select pg_read_file('/etc/passwd')",
        "public table": "select email from public.users",
        "lo_import": "select lo_import('/etc/passwd')",
        "lo_create": "select lo_create(0)",
    }


def source_checksum(url: str) -> str:
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select md5(string_agg(t::text, '|' order by t.id)) from public.users t")
        return cur.fetchone()[0]


@pytest.fixture(scope="module")
def reader_url(bootstrapped, settings) -> str:
    return privileges.reader_url(bootstrapped["url"], settings)


# --- PostgreSQL itself ----------------------------------------------------------------------

def test_superset_connects_as_the_reader_role_not_the_owner(api, settings):
    for name in ("Sparklio Analytics", "Sparklio Server Health"):
        uri = database_uri(api, name)
        assert uri.split("://")[1].startswith(f"{settings.reader_role}:"), uri
        committed = yaml.safe_load((ASSETS / "databases" / f"{name.replace(' ', '_')}.yaml").read_text())["sqlalchemy_uri"]
        assert f"//{settings.reader_role}:XXXXXXXXXX@" in committed


def test_reader_role_is_read_only_and_limited(reader_url, settings):
    with database.connect(reader_url) as conn, conn.cursor() as cur:
        cur.execute("select rolsuper, rolcreatedb, rolcreaterole, rolbypassrls from pg_roles where rolname = current_user")
        assert cur.fetchone() == (False, False, False, False)
        cur.execute("show default_transaction_read_only")
        assert cur.fetchone()[0] == "on"
        cur.execute("show statement_timeout")
        assert cur.fetchone()[0] == READER_STATEMENT_TIMEOUT
        cur.execute("show idle_in_transaction_session_timeout")
        assert cur.fetchone()[0] == "1min"
        cur.execute("select nspname from pg_namespace where has_schema_privilege(oid, 'create')")
        assert cur.fetchall() == []
        cur.execute("select count(*) from pg_auth_members m join pg_roles r on r.oid = m.roleid "
                    "where m.member = (select oid from pg_roles where rolname = current_user)")
        assert cur.fetchone()[0] == 0  # no pg_read_all_stats or any other role


# The bundle's rollup tables: <name>_stats_between() (and <name>_stats_all_brands_between(), the
# tables over all brands) reads them as its caller, the reader
ROLLUP_TABLES = {f"analytics.{name}_{kind}" for name in ("agent", "error", "router", "workflow", "asset")
                 for kind in ("rollup", "hours", "months")} | {"analytics.rollup_state"} \
    | {f"analytics.{name}_{kind}_all_brands" for name in ("agent", "error", "workflow", "asset")
       for kind in ("rollup", "hours", "months")} \
    | {"analytics.active_user_days", "analytics.active_user_days_all_brands"}


def test_reader_reads_every_view_and_only_the_views(reader_url, bootstrapped):
    """Every view, the rollup tables the range functions read (the same sums the views give)
    and nothing else: not the source tables, not the samples, not Superset's metadata."""
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select viewname from pg_views where schemaname = 'analytics' order by 1")
        views = [row[0] for row in cur.fetchall()]
    assert len(views) >= 13
    with database.connect(reader_url) as conn, conn.cursor() as cur:
        for view in views:
            cur.execute(f"select count(*) from analytics.{view}")
            assert cur.fetchone()[0] >= 0
        cur.execute("select table_schema || '.' || table_name from information_schema.role_table_grants "
                    "where grantee = current_user")
        granted = {row[0] for row in cur.fetchall()}
        cur.execute("select count(*) from analytics.slow_queries where query_preview like '%insufficient%'")
        assert cur.fetchone()[0] == 0  # every role's statements show, through statement_stats()
    assert granted == {f"analytics.{view}" for view in views} | ROLLUP_TABLES


@pytest.mark.parametrize("name", sorted(refused_statements(Path("/tmp"))))
def test_postgresql_refuses_the_reader_directly(reader_url, bootstrapped, tmp_path, name):
    tmp_path.chmod(0o777)  # so that only a privilege, not the folder's mode, stops a write
    statement = refused_statements(tmp_path)[name]
    before = source_checksum(bootstrapped["url"])
    with pytest.raises(psycopg2.Error), database.connect(reader_url) as conn, conn.cursor() as cur:
        cur.execute(statement)
    with pytest.raises(psycopg2.Error):  # and not after asking for a writable transaction either
        with database.connect(reader_url) as conn, conn.cursor() as cur:
            cur.execute("set transaction read write")
            cur.execute(statement)
    assert source_checksum(bootstrapped["url"]) == before
    assert list(tmp_path.iterdir()) == []


def test_an_owner_that_may_not_create_roles_is_told_the_dbas_sql(make_database, settings, bootstrapped, monkeypatch):
    """DATABASE_URL's role owns its database but may not create roles: migrations say what a
    DBA runs, and once the DBA did, everything works without the bundle touching the role."""
    url = make_database("dba")
    database_name = url.rsplit("/", 1)[1]
    with database.connect(bootstrapped["url"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("select 1 from pg_roles where rolname = 'limited_owner'")
        if not cur.fetchone():
            cur.execute("create role limited_owner login password 'limited-owner-pw' nocreaterole")
        cur.execute("drop role if exists dba_reader")
        cur.execute(f'alter database "{database_name}" owner to limited_owner')
    with database.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("create extension if not exists pg_stat_statements")  # the DBA's part for dashboard 5
    owner = make_url(url).set(username="limited_owner", password="limited-owner-pw").render_as_string(
        hide_password=False)
    from sparklio_bi.warehouse import migrate

    migrate.apply_source_ddl(owner, config.load())
    env = dict(os.environ, DATABASE_URL=owner, SPARKLIO_READER_ROLE="dba_reader",
               SPARKLIO_READER_PASSWORD="dba-reader-password")
    refused = run_cli("db", "upgrade", env=env)
    assert refused.returncode == 1
    assert ("Error: role dba_reader does not exist and this role may not create it: ask a DBA to run: "
            "create role dba_reader login password '<password>'") in refused.stderr
    with database.connect(bootstrapped["url"], autocommit=True) as conn, conn.cursor() as cur:
        dba_sql = privileges.dba_grants(config.load(dict(os.environ, SPARKLIO_READER_ROLE="dba_reader")),
                                        database_name)
        cur.execute(dba_sql.replace("'<password>'", "'dba-reader-password'"))
    assert run_cli("db", "upgrade", env=env).returncode == 0
    dba_settings = config.load(env)
    reader = privileges.ensure_login(owner, dba_settings)  # may not alter the role: checks the DBA's work
    assert privileges.missing_limits(reader, dba_settings) == []
    with database.connect(reader) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from analytics.workflows")
        assert cur.fetchone()[0] == 0


# --- SQL Lab ---------------------------------------------------------------------------------

def sql_lab(session: requests.Session, sql: str, headers: dict | None = None) -> requests.Response:
    database_id = 1  # the bundle's only database (test_superset checks there is one)
    return session.post(f"{session.base}/api/v1/sqllab/execute/", timeout=120, headers=headers or {},
                        json={"database_id": database_id, "schema": "analytics", "runAsync": False, "sql": sql})


@pytest.fixture(scope="module")
def people(api, bootstrapped, server):
    """A viewer, an analyst and a brand-limited viewer, created with the CLI and logged in through
    the login form."""
    sessions = {}
    for access, (username, password) in PEOPLE.items():
        cli("users", "add", username, "--role", access, env=dict(os.environ, SPARKLIO_USER_PASSWORD=password))
        sessions[access] = form_login(server, username, password)
    return sessions


@pytest.mark.parametrize("who", ["admin", "analyst"])
@pytest.mark.parametrize("name", sorted(refused_statements(Path("/tmp"))))
def test_sql_lab_refuses_what_the_reader_may_not_do(api, people, bootstrapped, tmp_path, who, name):
    tmp_path.chmod(0o777)
    session, headers = (api, csrf_header(api)) if who == "admin" else (people["analyst"], {})
    before = source_checksum(bootstrapped["url"])
    response = sql_lab(session, refused_statements(tmp_path)[name], headers)
    assert response.status_code != 200, response.text[:300]
    assert response.json().get("errors"), response.text[:300]
    assert source_checksum(bootstrapped["url"]) == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("statement", ["set statement_timeout = 0", "select 1; set statement_timeout = 0",
                                       "reset all", "begin read write", "copy (select 1) to stdout"])
def test_sql_lab_refuses_statements_that_change_the_session(people, statement):
    response = sql_lab(people["analyst"], statement)
    assert response.status_code != 200
    assert "Only read queries" in response.text


def test_a_long_query_is_cancelled_by_postgresql_and_the_worker_is_free(people, bootstrapped, settings):
    analyst = people["analyst"]
    response = sql_lab(analyst, "select count(*) from analytics.agent_logs a, analytics.agent_logs b, "
                                "analytics.agent_logs c")
    assert response.status_code != 200
    assert "statement timeout" in response.text, response.text[:500]
    assert response.elapsed.total_seconds() < 30
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_stat_activity where usename = %s and state = 'active'",
                    (settings.reader_role,))
        assert cur.fetchone()[0] == 0
    assert sql_lab(analyst, "select 1 as one").json()["data"] == [{"one": 1}]


def web_workers(settings, base: str) -> list:
    """The gunicorn workers of the server at `base` (its serve's gunicorn child's children)."""
    import psutil

    from sparklio_bi.ops import server as serving

    port = int(base.rsplit(":", 1)[1])
    status = json.loads(serving.status_file(settings.data_dir, port).read_text())
    gunicorn = next(child["pid"] for child in status["children"] if child["name"] == "gunicorn")
    return psutil.Process(gunicorn).children()


@pytest.mark.parametrize("statement", [
    "select repeat('x', 100000000) as one_big_value",  # the case, at 100 MB
    "select n, repeat('x', 15000) as wide from generate_series(1, 20000) n",  # 300 MB within the row limit
])
def test_a_result_is_bounded_in_bytes_and_the_worker_stays_small(people, server, settings, statement):
    """Finding 3: the row limit does not bound bytes. Past SPARKLIO_SQL_MAX_RESULT_BYTES (64 MB)
    PostgreSQL stops the query with one clear message, and no web worker grows by more than what
    reached it before that (at most the limit: libpq holds the rows until the error; one 100 MB
    value fails before any byte is sent), where 300 MB of rows would have grown it by far more."""
    workers = web_workers(settings, server)
    for _ in workers:  # warm each worker (the requests spread over them)
        sql_lab(people["analyst"], "select n, repeat('x', 1000) from generate_series(1, 1000) n")
    before = {worker.pid: worker.memory_info().rss for worker in workers}
    response = sql_lab(people["analyst"], statement)
    after = {worker.pid: worker.memory_info().rss for worker in workers}
    assert response.status_code != 200
    assert "this result is over 64 MB (SPARKLIO_SQL_MAX_RESULT_BYTES)" in response.text, response.text[:500]
    grown = max(after[pid] - before[pid] for pid in before)
    assert grown < 64 * 2**20 + 48 * 2**20, f"a web worker grew by {grown / 2**20:.0f} MB"
    assert sql_lab(people["analyst"], "select 1 as one").json()["data"] == [{"one": 1}]


def test_a_result_under_the_byte_limit_is_whole(people):
    response = sql_lab(people["analyst"], "select n, repeat('x', 1000) as wide, n as n2 from generate_series(1, 5000) n "
                                          "order by n desc")
    assert response.status_code == 200, response.text[:300]
    rows = response.json()["data"]
    assert [row["n"] for row in rows] == list(range(5000, 0, -1))
    assert all(len(row["wide"]) == 1000 and row["n2"] == row["n"] for row in rows)


def test_a_result_over_the_row_limit_is_cut_at_it(people):
    response = sql_lab(people["analyst"], f"select n from generate_series(1, {5 * SQL_MAX_ROW}) n")
    assert response.status_code == 200, response.text[:300]
    result = response.json()
    assert result["query"]["rows"] == SQL_MAX_ROW  # what PostgreSQL handed over, cut at the limit
    assert len(result["data"]) == min(SQL_MAX_ROW, 10000)  # what the page gets (DISPLAY_MAX_ROW)
    assert result.get("displayLimitReached") is (SQL_MAX_ROW > 10000)


# --- roles -----------------------------------------------------------------------------------

def test_viewer_sees_the_dashboards_and_nothing_else(people, api):
    viewer = people["viewer"]
    assert len(api_list(viewer, "dashboard")) == len(DASHBOARDS)
    charts = api_list(viewer, "chart")
    assert len(charts) == len(CHARTS)
    for chart in charts:
        assert viewer.get(f"{viewer.base}/api/v1/chart/{chart['id']}/data/", timeout=60).status_code == 200
    assert viewer.get(f"{viewer.base}/sqllab/", timeout=30, allow_redirects=False).status_code != 200
    assert sql_lab(viewer, "select 1").status_code == 403
    assert viewer.put(f"{viewer.base}/api/v1/chart/{charts[0]['id']}", json={"slice_name": "x"},
                      timeout=30).status_code == 403
    assert viewer.get(f"{viewer.base}/api/v1/security/users/", timeout=30).status_code in (401, 403, 404)
    assert viewer.get(f"{viewer.base}/api/v1/rowlevelsecurity/", timeout=30).status_code in (401, 403, 404)


def test_analyst_has_sql_lab_on_the_analytics_database_and_no_edits(people):
    analyst = people["analyst"]
    assert analyst.get(f"{analyst.base}/sqllab/", timeout=30, allow_redirects=False).status_code == 200
    assert sql_lab(analyst, "select count(*) as n from analytics.workflows").status_code == 200
    charts = api_list(analyst, "chart")
    assert analyst.put(f"{analyst.base}/api/v1/chart/{charts[0]['id']}", json={"slice_name": "x"},
                       timeout=30).status_code == 403
    assert analyst.get(f"{analyst.base}/api/v1/security/users/", timeout=30).status_code in (401, 403, 404)


def test_roles_survive_a_second_bootstrap(people, api):
    cli("bootstrap", "--no-serve", "--scale", "3")
    assert len(api_list(people["viewer"], "chart")) == len(CHARTS)
    assert sql_lab(people["analyst"], "select 1 as one").status_code == 200


# --- brands ----------------------------------------------------------------------------------

BRAND_TABLES = {  # a source table -> its rows of one brand
    "brands": "select * from public.brands where id = {brand}",
    "projects": "select * from public.projects where brand_id = {brand}",
    "workflows": "select * from public.workflows where project_id in (select id from public.projects "
                 "where brand_id = {brand})",
    "agent_logs": "select * from public.agent_logs where workflow_id in (select w.id from public.workflows w "
                  "join public.projects p on p.id = w.project_id where p.brand_id = {brand})",
    "assets": "select * from public.assets where project_id in (select id from public.projects "
              "where brand_id = {brand})",
}


def brand_charts() -> dict[str, bool]:
    """Spec key -> whether its dataset has a brand_id column (what a brand rule restricts)."""
    datasets = {}
    for path in (ASSETS / "datasets").rglob("*.yaml"):
        cfg = yaml.safe_load(path.read_text())
        datasets[cfg["uuid"]] = any(c["column_name"] == "brand_id" for c in cfg["columns"])
    return {key: datasets[yaml.safe_load((ASSETS / "charts" / f"{stem}.yaml").read_text())["dataset_uuid"]]
            for key, stem in CHART_FILES.items()}


@pytest.fixture(scope="module")
def brand(bootstrapped, server) -> tuple[int, requests.Session, str]:
    """The busiest brand, a viewer limited to it (logged in), and a schema of its rows only."""
    url = bootstrapped["url"]
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select brand_id from analytics.agent_logs group by 1 order by count(*) desc limit 1")
        brand_id = cur.fetchone()[0]
        schema = f"brand_{brand_id}_only"
        cur.execute(f"drop schema if exists {schema} cascade; create schema {schema}")
        for table, query in BRAND_TABLES.items():
            cur.execute(f"create view {schema}.{table} as {query.format(brand=brand_id)}")
    username, password = BRAND_USER
    cli("users", "add", username, "--brand", str(brand_id), env=dict(os.environ, SPARKLIO_USER_PASSWORD=password))
    yield brand_id, form_login(server, username, password), f"{schema}, public"
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"drop schema {schema} cascade")


@pytest.mark.parametrize("chart", CHARTS, ids=lambda c: f"{c.key} {c.title}")
def test_a_brand_user_sees_only_their_brand(brand, bootstrapped, api, chart):
    """Every chart of every dashboard, opened as a brand-limited viewer: on a dataset with
    brand_id it equals the reference SQL on that brand's rows only; a chart on any other dataset
    (the router's, the system's, signups) would show every brand's rows, so it is refused."""
    brand_id, session, restricted = brand
    ids = chart_ids(api)
    chart_id = ids[chart_titles()[chart.key]]
    if brand_charts()[chart.key]:
        assert_chart_matches_reference(session, bootstrapped["url"], chart, chart_id, restricted)
    else:
        response = session.get(f"{session.base}/api/v1/chart/{chart_id}/data/?force=true", timeout=60)
        assert response.status_code in (403, 404), response.text[:300]
        assert chart_id not in {c["id"] for c in api_list(session, "chart")}


def test_chart_1_1_follows_the_brand_rule(brand):
    """The issue's finding 2: workflow_daily had no brand_id, so chart 1.1 showed every brand."""
    assert brand_charts()["1.1"]


def filter_options(session, dataset_id: int, columns: list[str]) -> list[dict]:
    response = session.post(f"{session.base}/api/v1/chart/data", timeout=60, json={
        "datasource": {"id": dataset_id, "type": "table"}, "force": True,
        "queries": [{"columns": columns, "metrics": [], "row_limit": 1000}],
        "result_type": "full", "result_format": "json"})
    assert response.status_code == 200, response.text[:300]
    return response.json()["result"][0]["data"]


def test_the_filters_options_are_the_users_brands_only(brand, api, bootstrapped):
    """The Brand filter lists the user's brand alone; the Agent and Model filters the pairs that
    brand's executions used (agent_models v2)."""
    brand_id, session, _ = brand
    datasets = dataset_ids(api)
    assert [row["brand_id"] for row in filter_options(session, datasets["brand_names"], ["brand_id"])] == [brand_id]
    pairs = {(row["agent_name"], row["model"])
             for row in filter_options(session, datasets["agent_models"], ["agent_name", "model"])}
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select distinct agent_name, model from analytics.agent_logs where brand_id = %s", (brand_id,))
        assert pairs == set(cur.fetchall())


def test_a_brand_limit_is_for_viewers_only(brand, people):
    """SQL Lab reads every view whole: an analyst cannot be limited to a brand (one line, and
    nothing created or changed)."""
    brand_id, _, _ = brand
    env = dict(os.environ, SPARKLIO_USER_PASSWORD="limited-analyst-pw-1")
    refused = run_cli("users", "add", "lena", "--role", "analyst", "--brand", str(brand_id), env=env)
    assert refused.returncode == 1 and "can only be a viewer" in refused.stderr
    assert form_login_fails(people["analyst"].base, "lena", "limited-analyst-pw-1")
    refused = run_cli("users", "set-brands", PEOPLE["analyst"][0], "--brand", str(brand_id))
    assert refused.returncode == 1 and "can only be a viewer" in refused.stderr
    assert sql_lab(people["analyst"], "select count(*) as n from analytics.workflows").status_code == 200


def form_login_fails(base: str, username: str, password: str) -> bool:
    from sparklio_bi.superset.rest import RestError

    try:
        form_login(base, username, password)
    except RestError:
        return True
    return False


def test_brand_filter_reaches_the_brands_chart(brand, bootstrapped):
    brand_id, session, _ = brand
    ids = chart_ids(session)
    payload = session.get(f"{session.base}/api/v1/chart/{ids[chart_titles()['4.1']]}/data/?force=true",
                          timeout=60).json()
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select name from public.brands where id = %s", (brand_id,))
        name = cur.fetchone()[0]
    assert [row["brand_name"] for row in payload["result"][0]["data"]] == [name]


@pytest.mark.parametrize("title", ["Agent Performance", "Brand Usage"])
def test_a_brand_viewer_sees_the_dashboard_drawn_in_chromium(brand, server, title):
    """What the brand's person sees, in a real browser: every chart drawn, no error."""
    brand_id, session, _ = brand
    dashboard = next(d for d in api_list(session, "dashboard") if d["dashboard_title"] == title)
    driver = open_browser(server, *BRAND_USER, profile="chromium-profile-brand")
    try:
        assert_dashboard_renders(driver, session, dashboard, screenshot_suffix=f"-as-brand-{brand_id}")
    finally:
        driver.quit()


def test_unknown_brand_is_refused_with_one_line():
    done = cli("users", "set-brands", "nobody-at-all", "--brand", "987654", check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["Error: no brand with id 987654 in analytics.brands"]


# --- login, secrets ---------------------------------------------------------------------------

def test_wrong_passwords_are_rate_limited(bootstrapped):
    """20 wrong passwords in a row, through the form and the REST API, on a server with the
    default limit (one worker, so one counter)."""
    env_backup = os.environ.pop("SUPERSET_AUTH_RATE_LIMIT")
    try:
        proc, base = start_server("--workers", "1", "--collect-interval", "0", log_name="rate-limit-server.log")
    finally:
        os.environ["SUPERSET_AUTH_RATE_LIMIT"] = env_backup
    try:
        api_codes = [requests.post(f"{base}/api/v1/security/login", timeout=30, json={
            "username": "admin", "password": f"wrong-{i}", "provider": "db"}).status_code for i in range(20)]
        browser = requests.Session()
        token = re.search(r'"csrf_token":\s*"([^"]+)"|name="csrf_token"[^>]*value="([^"]+)"',
                          browser.get(f"{base}/login/", timeout=30).text)
        form = {"username": "admin", "csrf_token": next(g for g in token.groups() if g)}
        form_codes = [browser.post(f"{base}/login/", timeout=30, allow_redirects=False,
                                   data={**form, "password": f"wrong-{i}"}).status_code for i in range(20)]
        right = requests.post(f"{base}/api/v1/security/login", timeout=30, json={
            "username": "admin", "password": ADMIN_PASSWORD, "provider": "db"})
    finally:
        proc.terminate()
        proc.wait(30)
    assert api_codes.count(429) >= 10, api_codes
    assert form_codes.count(429) >= 10, form_codes
    assert right.status_code == 429  # even the right password waits for the window to pass
    log = artifact("rate-limit-server.log").read_text()
    assert "exceeded" in log


@pytest.mark.parametrize("variable, value, message", [
    ("SUPERSET_SECRET_KEY", "a", "SUPERSET_SECRET_KEY is too short"),
    ("SUPERSET_SECRET_KEY", "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", "SUPERSET_SECRET_KEY is a well-known example"),
    ("SUPERSET_SECRET_KEY", "", "SUPERSET_SECRET_KEY is not set"),
    ("SUPERSET_ADMIN_PASSWORD", "a", "SUPERSET_ADMIN_PASSWORD is too short"),
    ("SUPERSET_ADMIN_PASSWORD", "", "SUPERSET_ADMIN_PASSWORD is not set"),
    # finding 10: long enough, and still guessed at once
    ("SUPERSET_SECRET_KEY", "a" * 36, "SUPERSET_SECRET_KEY is too easy to guess"),
    ("SUPERSET_SECRET_KEY", "0123456789" * 4, "SUPERSET_SECRET_KEY is too easy to guess"),
    ("SUPERSET_ADMIN_PASSWORD", "aaaaaaaaaaaa", "SUPERSET_ADMIN_PASSWORD is too easy to guess"),
    ("SUPERSET_ADMIN_PASSWORD", "Password123!", "SUPERSET_ADMIN_PASSWORD is too easy to guess"),
])
def test_weak_or_missing_secrets_are_refused_outside_demo_mode(make_database, variable, value, message):
    url = make_database("prod")
    env = dict(os.environ, DATABASE_URL=url, SUPERSET_SECRET_KEY="Rt7vQe2LmX9pZk4WsB6nHc1JdF8gYa3U",
               SUPERSET_ADMIN_PASSWORD="Kestrel-harbour-71-lantern")
    env[variable] = value
    done = cli("bootstrap", "--no-serve", check=False, env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"Error: {message}"), done.stderr
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_namespace where nspname = 'analytics'")
        assert cur.fetchone()[0] == 0  # nothing created


def test_superset_itself_refuses_a_weak_secret_key_outside_demo_mode(bootstrapped):
    env = dict(os.environ, DATABASE_URL=bootstrapped["url"], SUPERSET_SECRET_KEY="short",
               SUPERSET_CONFIG_PATH=str(ROOT / "superset_config.py"))
    done = subprocess.run([sys.executable, "-c", "import superset.config"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: SUPERSET_SECRET_KEY is too short")


def test_demo_mode_generates_what_is_missing():
    assert config.secret_key_problem({}) is None
    assert config.admin_password_problem({}) is None
    assert config.secret_key_problem({"DATABASE_URL": "postgresql://x/y"})


def test_secret_files_are_private(bootstrapped, settings):
    files = ["pg-password", "pg-reader-password", "superset-secret-key"]
    for name in files:
        path = settings.data_dir / name
        assert path.exists(), name
        assert path.stat().st_mode & 0o077 == 0, f"{name} is readable by others"


def test_secrets_are_not_in_any_process_arguments(server, settings):
    secrets = [(settings.data_dir / name).read_text().strip()
               for name in ("pg-password", "pg-reader-password", "superset-secret-key")] + [ADMIN_PASSWORD]
    seen = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        seen += "gunicorn" in args or "postgres" in args
        for secret in secrets:
            assert secret not in args, f"a secret is in the arguments of {cmdline.parent.name}"
    assert seen >= 2  # the web server and the database were there to look at


def test_cookies_are_httponly_and_samesite(server):
    response = requests.get(f"{server}/login/", timeout=30)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


def test_a_brand_users_rollup_charts_equal_their_brands_raw_rows_on_random_ranges(brand, bootstrapped, api):
    """Each chart on a rollup with brand_id, as the brand-limited viewer, for random ranges
    (ends at any second): the chart's own query on that brand's raw rows."""
    from tests.test_time_ranges import differing, post_chart_ranges, random_ranges, ranged_charts, raw_rows, superset_range

    brand_id, session, _ = brand
    charts = {name: c for name, c in ranged_charts().items() if c["view"] != "router_stats"}
    ids = chart_ids(api)
    datasets = dataset_ids(api)
    rng = random.Random(19)
    now = datetime.now(timezone.utc)

    def time_ranges_of(*_):
        return [superset_range(s, u) for s, u in random_ranges(rng, now, 8) if s is not None]

    problems = []
    for name, chart, time_range, result in post_chart_ranges(session, charts, ids, datasets, time_ranges_of):
        columns, rows = raw_rows(bootstrapped["url"], result["query"], chart["view"], brand_id)
        found = differing(result, columns, rows, chart["view"])
        if found:
            problems.append(f"{name}, {time_range}: {found}")
    assert len(charts) == 17 and not problems, "\n".join(problems)
