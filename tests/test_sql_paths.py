"""No SQL path around the bundle's rules (issue 31): a function that runs a query string, acts on
other sessions or reads settings is refused in every place a Superset user can write SQL (a
chart's custom SQL column, metric and filter, and SQL Lab), as a brand-limited viewer and as an
analyst, with one clear message and nothing of another brand in the answer; the reader role may
not execute the worst of them at all (found in PostgreSQL's catalog, not from a list); SQL Lab's
schema field is a name, not a statement."""
from __future__ import annotations

import os
import re
import uuid

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from sparklio_bi.postgres import database, privileges
from sparklio_bi.superset import query_rules
from tests.conftest import cli, dataset_ids, form_login

VIEWER = ("bria", "bria-password-1")
ANALYST = ("alex", "alex-password-1")
MARK = "xbrand"  # every string-running payload would answer "<MARK><brand id>" per brand it read
READS_BRANDS = (f"select to_tsvector(''simple'', ''{MARK}'' || brand_id::text) from analytics.agent_logs "
                "group by brand_id")

# name -> (an expression that calls it, the function's name the refusal must say)
BATTERY = {
    "ts_stat": (f"(ts_stat('{READS_BRANDS}')).word", "ts_stat"),
    "ts_stat with weights": (f"(ts_stat('{READS_BRANDS}', 'a')).word", "ts_stat"),
    "ts_stat quoted": (f"(\"ts_stat\"('{READS_BRANDS}')).word", "ts_stat"),
    "ts_stat qualified": (f"(pg_catalog.ts_stat('{READS_BRANDS}')).word", "ts_stat"),
    "ts_stat qualified and quoted": (f"(\"pg_catalog\".\"ts_stat\"('{READS_BRANDS}')).word", "ts_stat"),
    "ts_stat upper case": (f"(TS_STAT('{READS_BRANDS}')).word", "ts_stat"),
    # Superset's own parse rewrites the escape before PostgreSQL sees it: refused either way
    "ts_stat unicode escape": (f"(U&\"\\0074s_stat\"('{READS_BRANDS}')).word", "s_stat"),
    "ts_stat comment before the parenthesis": (f"(ts_stat/**/('{READS_BRANDS}')).word", "ts_stat"),
    "ts_stat line break": (f"(ts_stat\n('{READS_BRANDS}')).word", "ts_stat"),
    "ts_stat dollar quoted": ("(ts_stat($q$select to_tsvector('simple', 'xbrand' || brand_id::text) "
                              "from analytics.agent_logs group by brand_id$q$)).word", "ts_stat"),
    "ts_stat escape string": ("(ts_stat(E'select to_tsvector(\\'simple\\', \\'xbrand\\' || brand_id::text) "
                              "from analytics.agent_logs group by brand_id')).word", "ts_stat"),
    "ts_stat in a case": (f"case when true then (ts_stat('{READS_BRANDS}')).word end", "ts_stat"),
    "ts_rewrite": ("ts_rewrite('a'::tsquery, 'select ''a''::tsquery, ''b''::tsquery')::text", "ts_rewrite"),
    "query_to_xml": ("query_to_xml('select email from analytics.users', true, false, '')::text", "query_to_xml"),
    "query_to_xmlschema": ("query_to_xmlschema('select 1', true, false, '')::text", "query_to_xmlschema"),
    "table_to_xml": ("table_to_xml('analytics.users', true, false, '')::text", "table_to_xml"),
    "schema_to_xml": ("schema_to_xml('analytics', true, false, '')::text", "schema_to_xml"),
    "database_to_xml": ("database_to_xml(true, false, '')::text", "database_to_xml"),
    "pg_terminate_backend": ("pg_terminate_backend(0)::text", "pg_terminate_backend"),
    "pg_cancel_backend": ("pg_cancel_backend(0)::text", "pg_cancel_backend"),
    "pg_stat_get_activity": ("(pg_stat_get_activity(null)).query", "pg_stat_get_activity"),
    "pg_blocking_pids": ("pg_blocking_pids(0)::text", "pg_blocking_pids"),
    "current_setting": ("current_setting('is_superuser')", "current_setting"),
    "set_config": ("set_config('statement_timeout', '0', false)", "set_config"),
    "version": ("version()", "version"),
    "pg_show_all_settings": ("(pg_show_all_settings()).setting", "pg_show_all_settings"),
    "current_user": ("current_user::text", "current_user"),
    "session_user": ("session_user::text", "session_user"),
    "current_database": ("current_database()::text", "current_database"),
    "inet_server_addr": ("inet_server_addr()::text", "inet_server_addr"),
    "pg_backend_pid": ("pg_backend_pid()::text", "pg_backend_pid"),
    "pg_sleep": ("pg_sleep(0)::text", "pg_sleep"),
    "pg_read_file": ("pg_read_file('/etc/hostname')", "pg_read_file"),
    "pg_ls_dir": ("pg_ls_dir('.')", "pg_ls_dir"),
    "pg_postmaster_start_time": ("pg_postmaster_start_time()::text", "pg_postmaster_start_time"),
    "pg_advisory_lock": ("pg_advisory_lock(1)::text", "pg_advisory_lock"),
    "txid_current": ("txid_current()::text", "txid_current"),
}
# Where a user writes chart SQL, as the chart data API takes it
PLACES = ("column", "metric", "where", "having")


@pytest.fixture(scope="module")
def users(api, bootstrapped, server):
    """A viewer limited to the busiest brand and an analyst, logged in through the form."""
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select brand_id from analytics.agent_logs group by 1 order by count(*) desc limit 1")
        brand_id = cur.fetchone()[0]
    cli("users", "add", VIEWER[0], "--brand", str(brand_id), env=dict(os.environ, SPARKLIO_USER_PASSWORD=VIEWER[1]))
    cli("users", "add", ANALYST[0], "--role", "analyst", env=dict(os.environ, SPARKLIO_USER_PASSWORD=ANALYST[1]))
    return {"brand": brand_id, "viewer": form_login(server, *VIEWER), "analyst": form_login(server, *ANALYST),
            "datasets": dataset_ids(api)}


def chart_query(expression: str, place: str) -> dict:
    query = {"columns": ["brand_id"], "metrics": ["count"], "row_limit": 100, "orderby": []}
    if place == "column":
        query["columns"] = [{"label": "c", "expressionType": "SQL", "sqlExpression": expression}]
        query["metrics"] = []
    elif place == "metric":
        query["metrics"] = [{"label": "m", "expressionType": "SQL", "sqlExpression": f"max(({expression})::text)"}]
    else:
        query["extras"] = {place: f"({expression})::text is not null" if place == "where"
                           else f"max(({expression})::text) is not null"}
    return query


def post_chart(session, dataset_id: int, query: dict):
    return session.post(f"{session.base}/api/v1/chart/data", timeout=120, json={
        "datasource": {"id": dataset_id, "type": "table"}, "queries": [query],
        "result_format": "json", "result_type": "full", "force": True})


def sql_lab(session, sql: str, schema: str = "analytics"):
    return session.post(f"{session.base}/api/v1/sqllab/execute/", timeout=120,
                        json={"database_id": 1, "schema": schema, "runAsync": False, "sql": sql})


def refusal(response) -> str:
    """The one message, on one line, of a refused request (fails the test when it was not refused).
    Superset answers a query refused inside SQL Lab's execution 500, with the message as given."""
    assert response.status_code in (400, 403, 422, 500), f"{response.status_code}: {response.text[:400]}"
    body = response.json()
    messages = [error.get("message", "") for error in body.get("errors", [])] or [body.get("message", "")]
    assert len(messages) == 1 and messages[0] and "\n" not in messages[0].strip(), body
    return messages[0]


@pytest.mark.parametrize("name", sorted(BATTERY))
@pytest.mark.parametrize("place", PLACES)
def test_a_brand_viewer_cannot_call_it_in_chart_sql(users, name, place):
    """The issue's request, and every variant of it, on the brands dataset the viewer may read."""
    expression, function = BATTERY[name]
    response = post_chart(users["viewer"], users["datasets"]["brands"], chart_query(expression, place))
    message = refusal(response)
    assert function in message.lower() and "may not be called" in message, message
    assert not re.search(MARK + r"\d", response.text), response.text[:400]  # no brand's rows


# Superset's SQL Lab rewrites U&"\0074s_stat"(...) into `U & "\0074s_stat"(...)` (sqlglot) before
# anything runs: PostgreSQL then reads a column u and answers that it has none; no function runs
SQL_LAB_REFUSED_OTHERWISE = {"ts_stat unicode escape": 'resolve the column "u"'}


@pytest.mark.parametrize("name", sorted(BATTERY))
def test_an_analyst_cannot_call_it_in_sql_lab(users, name):
    expression, function = BATTERY[name]
    message = refusal(sql_lab(users["analyst"], f"select {expression} as c"))
    if name in SQL_LAB_REFUSED_OTHERWISE:
        assert SQL_LAB_REFUSED_OTHERWISE[name] in message, message
        return
    assert function in message.lower() and "may not be called" in message, message


def test_the_datasets_charts_still_answer_as_the_viewer(users):
    """The allowlist lets through what a chart needs: a count by day with a custom SQL metric."""
    query = {"columns": [{"label": "day", "expressionType": "SQL", "sqlExpression": "date_trunc('day', period_start)"}],
             "metrics": [{"label": "m", "expressionType": "SQL",
                          "sqlExpression": "round(100.0 * sum(successes) / nullif(sum(executions), 0), 2)"}],
             "row_limit": 100, "orderby": [], "time_range": "Last week"}
    response = post_chart(users["viewer"], users["datasets"]["agent_stats"], query)
    assert response.status_code == 200, response.text[:400]
    assert response.json()["result"][0]["rowcount"] > 0


def test_sql_lab_keeps_ordinary_functions(users):
    response = sql_lab(users["analyst"], "select lower('A') as a, round(2.5) as r, jsonb_build_object('k', 1) as j, "
                                         "generate_series(1, 3) as n")
    assert response.status_code == 200, response.text[:400]
    assert len(response.json()["data"]) == 3


def test_sql_lab_refuses_the_views_of_other_sessions(users):
    message = refusal(sql_lab(users["analyst"], "select query from pg_stat_activity"))
    assert "pg_stat_activity" in message, message  # Superset's own table list, or query_rules


# --- the reader role itself -----------------------------------------------------------------

def catalog_string_runners(owner_url: str, role_url: str) -> list[str]:
    """Every function the role may execute that takes text, called with a query that raises
    when it runs as the text: those that ran it (PostgreSQL's catalog, not a list)."""
    probe = f"probe_{uuid.uuid4().hex[:8]}"
    with database.connect(owner_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"create function public.{probe}() returns int language plpgsql as "
                    "$$begin raise exception 'PROBE_RAN'; end$$")
        cur.execute("select p.oid::regprocedure::text, p.proname, n.nspname, "
                    "array(select format_type(t, null) from unnest(p.proargtypes) t) "
                    "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                    "where p.prokind = 'f' and n.nspname not in ('analytics', 'information_schema') "
                    "and exists (select 1 from unnest(p.proargtypes) t where t in ('text'::regtype, 'varchar'::regtype)) "
                    "and not exists (select 1 from unnest(p.proargtypes) t where format_type(t, null) in "
                    "('internal', 'anyelement', 'anyarray', 'anynonarray', 'anycompatible', '\"any\"', 'anyenum', "
                    "'anyrange', 'anycompatiblearray', 'anymultirange', 'anycompatiblemultirange', 'anycompatiblenonarray'))"
                    " and p.prorettype <> 'internal'::regtype order by 1")
        functions = cur.fetchall()
    values = {"integer": "1", "smallint": "1", "bigint": "1", "oid": "1", "boolean": "false", "double precision": "1",
              "real": "1", "numeric": "1", "regclass": "'analytics.brands'", "tsquery": "'a'", "name": "'analytics'"}
    ran = []
    try:
        with database.connect(role_url, autocommit=True) as conn, conn.cursor() as cur:
            for signature, name, schema, types in functions:
                args = [f"'select public.{probe}()'::{t}" if t in ("text", "character varying")
                        else f"{values[t]}::{t}" if t in values else f"null::{t}" for t in types]
                try:
                    cur.execute(f'select "{schema}"."{name}"({", ".join(args)})')
                except psycopg2.Error as exc:
                    if "PROBE_RAN" in str(exc):
                        ran.append(signature)
    finally:
        with database.connect(owner_url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"drop function public.{probe}()")
    assert len(functions) > 300, "the probe found too few functions to have looked"
    return ran


@pytest.fixture(scope="module")
def plain_role(bootstrapped):
    """A login role with PUBLIC's rights only, and the URL of it on a database of the server."""
    role = f"plain_{uuid.uuid4().hex[:8]}"
    with database.connect(bootstrapped["url"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"create role {role} login password 'plain-role-pw'")
    yield role
    with database.connect(bootstrapped["url"], autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"drop owned by {role}; drop role {role}")


def as_role(url: str, role: str) -> str:
    return make_url(url).set(username=role, password="plain-role-pw").render_as_string(hide_password=False)


def test_the_string_running_functions_found_in_the_catalog_are_the_bundles_list(make_database, plain_role):
    """On a database the bundle never hardened, a plain role runs query strings through these;
    every one is on STRING_RUNNING_FUNCTIONS, and ts_stat is among them (the issue's)."""
    url = make_database("probe")
    found = catalog_string_runners(url, as_role(url, plain_role))
    assert any(signature.startswith("ts_stat(") for signature in found), found
    assert {signature.split("(")[0] for signature in found} <= privileges.STRING_RUNNING_FUNCTIONS, found


def test_the_reader_role_runs_no_query_string_on_the_bundles_server(bootstrapped, settings):
    reader = privileges.reader_url(bootstrapped["url"], settings)
    assert catalog_string_runners(bootstrapped["url"], reader) == []
    assert privileges.risky_functions(reader) is None
    with database.connect(reader) as conn, conn.cursor() as cur:
        for statement in ("select pg_terminate_backend(pg_backend_pid())", "select pg_cancel_backend(0)",
                          "select count(*) from pg_stat_activity", "select * from ts_stat('select 1')"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
            conn.rollback()


def test_on_a_dba_server_doctor_and_bootstrap_give_the_dbas_sql_and_it_works(make_database, plain_role, bootstrapped):
    """DATABASE_URL: the bundle does not change PUBLIC's grants on Sparklio's server; it names
    what is left and the SQL a DBA runs, and once run nothing is left."""
    url = make_database("dba_revokes")
    role_url = as_role(url, plain_role)
    left = privileges.risky_functions(role_url)
    assert left and "ts_stat" in left and privileges.dba_revokes() in left
    with database.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(privileges.dba_revokes())
    assert privileges.risky_functions(role_url) is None
    assert catalog_string_runners(url, role_url) == []


# --- SQL Lab's schema -------------------------------------------------------------------------

@pytest.mark.parametrize("payload", ['analytics"; set statement_timeout = 0; --',
                                     'analytics";set/**/statement_timeout=0;select "x',
                                     'analytics", public; set statement_timeout = 0; --'])
def test_sql_lab_schema_is_a_name_not_a_statement(users, payload):
    """Finding 2: the schema went into `set search_path = "<schema>"` unescaped; the timeout the
    payload turned off still cancels a long query."""
    response = sql_lab(users["analyst"], "select count(*) from analytics.agent_logs a, analytics.agent_logs b, "
                                         "analytics.agent_logs c", schema=payload)
    assert response.status_code != 200
    assert "statement timeout" in response.text, response.text[:400]


def test_sql_lab_schema_still_sets_the_search_path(users):
    response = sql_lab(users["analyst"], "select count(*) as n from workflows")
    assert response.status_code == 200, response.text[:400]


def test_the_rules_are_one_list():
    """SQL Lab's Superset-side list holds every refused function; the revoked ones are refused."""
    assert privileges.STRING_RUNNING_FUNCTIONS | privileges.SESSION_FUNCTIONS <= query_rules.REFUSED_FUNCTIONS
    assert not query_rules.CHART_FUNCTIONS & query_rules.REFUSED_FUNCTIONS


# --- times in the reporting zone ----------------------------------------------------------------

def test_superset_reads_a_time_as_the_reporting_zones_wall_clock(server, settings):
    """Finding 9: Superset's pages print an aware time in UTC; its analytics connections read a
    timestamptz as the session zone's clock (the reader role's zone is SPARKLIO_TIMEZONE)."""
    from datetime import datetime

    from sparklio_bi.superset import app as superset_app
    from sparklio_bi.superset import internals

    with superset_app.app_context(settings):
        databases = internals.models()["databases"]
        found = internals.session().query(databases).filter_by(database_name="Sparklio Analytics").one()
        with found.get_sqla_engine() as engine, engine.connect() as conn:
            conn.exec_driver_sql("set timezone = 'Asia/Seoul'")  # as a Seoul install's reader role has it
            seoul = conn.exec_driver_sql("select timestamptz '2026-12-07 13:54:44.25+00', "
                                         "date_trunc('day', timestamptz '2026-12-07 20:00+00')").one()
            conn.exec_driver_sql("set timezone = 'UTC'")
            utc = conn.exec_driver_sql("select timestamptz '2026-12-07 13:54:44.25+00'").scalar()
    assert tuple(seoul) == (datetime(2026, 12, 7, 22, 54, 44, 250000), datetime(2026, 12, 8))
    assert utc == datetime(2026, 12, 7, 13, 54, 44, 250000)
