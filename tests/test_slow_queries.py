"""slow_queries shows a statement's text only where PostgreSQL's own parse left no literal in it
(issue 31, finding 3): every form of a statement that carries a password, run by the owner, reaches
neither the reader role nor a plain viewer's chart data, and normalised statements still show."""
from __future__ import annotations

import json
import os

import psycopg2.extensions
import pytest

from sparklio_bi import config
from sparklio_bi.postgres import database, privileges
from sparklio_bi.warehouse import migrate
from tests.conftest import cli, dataset_ids, form_login

SECRET = "Sl0wQ31secret"  # a bare word too: `set x = word` takes it unquoted
ROLE, SERVER, SUBSCRIPTION = "slowq31_role", "slowq31_server", "slowq31_sub"
VIEWER = ("quinn", "quinn-password-31")
NORMALISED = f"select count(*) from analytics.brands where brand_name = '{SECRET}' and brand_id <> 31"


def carriers(verifier: str) -> dict[str, str]:
    """Statements whose text carries the secret, by name: the issue's two, then every other way
    PostgreSQL's grammar takes a password, a conninfo or a setting's value."""
    return {
        "issue: comment for a space, E'' escapes": f"alter/**/role {ROLE} password E'{SECRET}_1\\x21'",
        "issue: a subscription's conninfo": f"create subscription {SUBSCRIPTION} connection "
                                            f"'host=127.0.0.1 port=1 dbname=x user=u password={SECRET}_2' "
                                            "publication p with (connect = false)",
        "alter subscription, quoted value in the conninfo": f"alter subscription {SUBSCRIPTION} connection "
                                                            f"'password=''{SECRET}_3'' host=127.0.0.1'",
        "mixed case": f"AlTeR RoLe {ROLE} WiTh PaSsWoRd '{SECRET}_4'",
        "comments between keywords": f"alter /* a */ role -- b\n {ROLE} /* c */ password '{SECRET}_5'",
        "dollar quotes": f"alter role {ROLE} password $${SECRET}_6$$",
        "tagged dollar quotes": f"alter role {ROLE} password $pw${SECRET}_7$pw$",
        "unicode escapes": f"alter role {ROLE} password U&'{SECRET}_8\\0021'",
        "create role": f"create role {ROLE}_b login password '{SECRET}_9'",
        "a SCRAM verifier, as psql's \\password sends it": f"alter role {ROLE} password '{verifier}'",
        "create server options": f"create server {SERVER} foreign data wrapper postgres_fdw "
                                 f"options (host '127.0.0.1', dbname '{SECRET}_10')",
        "create user mapping": f"create user mapping for {ROLE} server {SERVER} "
                               f"options (user 'u', password '{SECRET}_11')",
        "alter user mapping": f"alter user mapping for {ROLE} server {SERVER} options (set password '{SECRET}_12')",
        "set with a bare word": f"set sparklio_test.password = {SECRET}_13",
        "set session ... to a string": f"set session sparklio_test.password to '{SECRET}_14'",
        "alter role set": f"alter role {ROLE} set sparklio_test.password = '{SECRET}_15'",
        "a do block": f"do $$begin execute 'alter role {ROLE} password ''{SECRET}_16'''; end$$",
        "comment on": f"comment on role {ROLE} is 'password: {SECRET}_17'",
        "second of two statements": f"select 1; alter role {ROLE} password '{SECRET}_18'",
        "a comment in a normalised statement": f"select 31 /* password {SECRET}_19 */ + 1",
        "set_config in a select": f"select set_config('sparklio_test.password', '{SECRET}_20', false)",
        "a select with a literal, normalised": NORMALISED,
    }


@pytest.fixture(scope="module")
def viewer(bootstrapped, server):
    """A plain viewer, created with the CLI and logged in through the login form."""
    username, password = VIEWER
    cli("users", "add", username, "--role", "viewer", env=dict(os.environ, SPARKLIO_USER_PASSWORD=password))
    return form_login(server, username, password)


@pytest.fixture(scope="module")
def carried(bootstrapped, viewer):
    """Every carrier run by the owner on the bundle's database (kept by pg_stat_statements), once
    Superset serves, and the secrets they hold; what they created is removed afterwards."""
    owner = bootstrapped["url"]
    with database.connect(owner, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("select 1 from pg_extension where extname = 'postgres_fdw'")
        had_fdw = cur.fetchone() is not None
        cur.execute("create extension if not exists postgres_fdw")
        cur.execute(f"create role {ROLE}")
        verifier = psycopg2.extensions.encrypt_password(f"{SECRET}_v", ROLE, conn, "scram-sha-256")
        for statement in carriers(verifier).values():
            cur.execute(statement)
        cur.execute("reset sparklio_test.password")
    yield {"secret": SECRET, "verifier": verifier.split("$", 1)[1]}  # the verifier's salt and keys
    with database.connect(owner, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"alter subscription {SUBSCRIPTION} disable")
        cur.execute(f"alter subscription {SUBSCRIPTION} set (slot_name = none)")
        cur.execute(f"drop subscription {SUBSCRIPTION}")
        cur.execute(f"drop server {SERVER} cascade")
        cur.execute(f"drop role {ROLE}_b")
        cur.execute(f"drop role {ROLE}")
        if not had_fdw:
            cur.execute("drop extension postgres_fdw")


def holding(rows: list, secrets: list[str]) -> list:
    """The rows whose text holds one of the secrets (case aside: a bare word is folded)."""
    return [row for row in rows if any(secret.lower() in json.dumps(row).lower() for secret in secrets)]


def test_pg_stat_statements_kept_the_secrets_the_view_must_hide(carried, bootstrapped):
    """What the test is about: PostgreSQL itself keeps these texts, literals and all."""
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select query from pg_stat_statements where strpos(lower(query), lower(%s)) > 0",
                    (carried["secret"],))
        kept = [row[0] for row in cur.fetchall()]
    assert len(kept) >= 15, kept


def test_the_reader_role_reads_no_secret_in_slow_queries(carried, bootstrapped, settings):
    with database.connect(privileges.reader_url(bootstrapped["url"], settings)) as conn, conn.cursor() as cur:
        cur.execute("select t::text from analytics.slow_queries t")
        rows = [row[0] for row in cur.fetchall()]
    assert holding(rows, [carried["secret"], carried["verifier"]]) == []
    shown = set(rows)
    assert any("brand_name = $1 and brand_id <> $2" in row for row in shown), "a normalised select shows"
    for hidden in ("ALTER ROLE (text hidden)", "CREATE SUBSCRIPTION (text hidden)",
                   "CREATE USER MAPPING FOR (text hidden)", "DO (text hidden)"):
        assert any(hidden in row for row in shown), hidden  # the statement and its timings stay


def test_a_viewer_reads_no_secret_in_the_slow_queries_chart_data(carried, viewer, api):
    response = viewer.post(f"{viewer.base}/api/v1/chart/data", timeout=60, json={
        "datasource": {"id": dataset_ids(api)["slow_queries"], "type": "table"}, "force": True,
        "queries": [{"columns": ["query_preview", "query", "database_name", "calls"], "metrics": [],
                     "row_limit": 10000, "orderby": []}],
        "result_type": "full", "result_format": "json"})
    assert response.status_code == 200, response.text[:300]
    rows = response.json()["result"][0]["data"]
    assert holding(rows, [carried["secret"], carried["verifier"]]) == []
    assert any("brand_name = $1 and brand_id <> $2" in row["query"] for row in rows)


@pytest.mark.parametrize(("query", "server_version", "shown"), [
    ("select a from t where b = $1 and c = $2", 180000, "select a from t where b = $1 and c = $2"),
    ("set my.password = $1", 180000, "set my.password = $1"),
    ("vacuum analyze analytics.agent_rollup", 180000, "vacuum analyze analytics.agent_rollup"),
    ("alter role r connection limit 5", 180000, "alter role r connection limit 5"),
    ("alter role r password 'x'", 180000, "ALTER ROLE (text hidden)"),
    ("create or replace function f() returns int language sql as $$select 1$$", 180000,
     "CREATE OR REPLACE FUNCTION (text hidden)"),
    ("select $a$x$a$", 180000, "SELECT (text hidden)"),
    ("select 1 -- a comment", 180000, "SELECT (text hidden)"),
    ("/* a /* nested */ secret */ alter role r password 'x'", 180000, "(text hidden)"),
    # before 16 PostgreSQL normalises no utility statement: a SET keeps its bare word
    ("set my.password = hunter2", 150000, "SET (text hidden)"),
    ("select a from t where b = $1", 150000, "select a from t where b = $1"),
])
def test_statement_text_shows_only_what_postgresql_normalised(bootstrapped, query, server_version, shown):
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select analytics.statement_text(%s, %s, array(select word from pg_get_keywords()))",
                    (query, server_version))
        assert cur.fetchone()[0] == shown


def test_bootstrap_still_finds_the_statements_that_set_a_password(carried, bootstrapped):
    """carries_password(), what bootstrap removes from the statistics (privileges.py): every
    statement that sets a password or a conninfo, and no normalised one."""
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select query from pg_stat_statements where analytics.carries_password(query)")
        found = [row[0] for row in cur.fetchall()]
    for fragment in ("alter/**/role", "create subscription", "alter subscription", "AlTeR RoLe", "create user mapping",
                     "alter user mapping", "$pw$", "U&'"):
        assert any(fragment in text for text in found), fragment
    assert not any("brand_name = $1" in text or "set_config" in text for text in found)


def test_0019_down_restores_statement_stats_v2(make_database):
    url = make_database("stats")
    migrate.apply_source_ddl(url, config.load())
    migrate.upgrade(url, config.load(), "0018")
    v2 = function_sources(url)
    migrate.upgrade(url, config.load(), "0019")
    assert set(function_sources(url)) == set(v2) | {"statement_text", "command_words", "keeps_literal"}
    migrate.downgrade(url, config.load(), "0018")
    assert function_sources(url) == v2


def function_sources(url: str) -> dict[str, str]:
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select proname, prosrc from pg_proc where pronamespace = 'analytics'::regnamespace "
                    "and proname in ('statement_stats', 'carries_password', 'statement_text', 'command_words', "
                    "'keeps_literal')")
        return dict(cur.fetchall())
