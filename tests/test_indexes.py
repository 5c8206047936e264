"""Issue 16: the indexes the views and the refresh rely on are named in one place, checked by
`doctor` on any database (the demo's DDL creates them; Sparklio's own database may not have
them) and built concurrently by `sparklio-bi db indexes --create`; found by what they index, not
by name; a failed concurrent build (an invalid index) is detected and cleaned up."""
from __future__ import annotations

import os

import pytest

from sparklio_bi import config
from sparklio_bi.ops import doctor
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import indexes
from tests.conftest import cli, seed_database

LATEST_FAILURES = ("select created_at from public.agent_logs where status <> 'success' "
                   "order by created_at desc limit 20")


@pytest.fixture
def source(make_database):
    url = make_database("indexes")
    seed_database(url, scale=0.5)
    return url


def db_indexes(url: str, *args: str):
    return cli("db", "indexes", *args, check=False, env={**os.environ, "DATABASE_URL": url})


def check(url: str) -> list[doctor.Check]:
    return doctor.check_indexes(doctor.Context(config.load({**os.environ, "DATABASE_URL": url}), "", 60))


def run(url: str, *statements: str) -> None:
    with database.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def test_every_index_is_found_by_what_it_indexes_and_a_missing_one_is_named_with_its_statement(source):
    assert [c.ok for c in check(source)] == [True] and db_indexes(source).returncode == 0
    run(source, "alter index public.projects_user_id_idx rename to the_applications_own_name",
        "drop index public.agent_logs_failed_idx", "drop index public.agent_logs_created_at_idx")
    found = {f.index.name: f for f in indexes.survey(source, config.load())}
    assert found["projects_user_id_idx"].state == "present"  # another name, the same index
    assert found["projects_user_id_idx"].existing == "the_applications_own_name"
    assert {name for name, f in found.items() if f.state != "present"} == \
        {"agent_logs_failed_idx", "agent_logs_created_at_idx"}
    lines = [c.line() for c in check(source)]
    assert len(lines) == 2 and all(line.startswith("FAIL  indexes: ") for line in lines)
    assert any("create index concurrently if not exists agent_logs_failed_idx on public.agent_logs (created_at) "
               "where status <> 'success' (fix: sparklio-bi db indexes --create)" in line and "chart 8.3" in line
               for line in lines)
    listed = db_indexes(source)
    assert listed.returncode == 1 and listed.stdout.count("MISSING") == 2


def test_create_builds_the_missing_ones_concurrently_and_replaces_a_failed_build(source):
    run(source, "drop index public.agent_logs_failed_idx", "drop index public.assets_created_at_idx",
        # what a concurrent build that failed leaves: the index, marked invalid
        "update pg_index set indisvalid = false where indexrelid = 'public.projects_created_at_idx'::regclass")
    found = {f.index.name: f.state for f in indexes.survey(source, config.load())}
    assert (found["agent_logs_failed_idx"], found["projects_created_at_idx"]) == ("missing", "invalid")
    created = db_indexes(source, "--create")
    assert created.returncode == 0, created.stderr
    assert "dropping the invalid index projects_created_at_idx" in created.stdout and "built 3 index(es)" in created.stdout
    assert all(f.state == "present" for f in indexes.survey(source, config.load())) and check(source)[0].ok
    with database.connect(source) as conn, conn.cursor() as cur:
        cur.execute("set enable_seqscan = off")  # a small table: the planner would scan it whole
        cur.execute(f"explain {LATEST_FAILURES}")
        assert "agent_logs_failed_idx" in " ".join(row[0] for row in cur.fetchall())
    assert db_indexes(source, "--create").stdout.startswith("nothing to build")


def test_an_invalid_index_of_another_name_is_left_to_its_owner(source):
    """It may be the application's own build, still running: named, not dropped."""
    run(source, "alter index public.assets_project_id_idx rename to app_assets_idx",
        "update pg_index set indisvalid = false where indexrelid = 'public.app_assets_idx'::regclass")
    created = db_indexes(source, "--create")
    assert created.returncode == 1
    assert created.stderr.strip().splitlines()[-1].startswith("Error: public.app_assets_idx is invalid")
    with database.connect(source) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_class where relname = 'app_assets_idx'")
        assert cur.fetchone()[0] == 1


def test_on_a_source_with_only_primary_keys_doctor_names_each_index_and_create_builds_them_all(source):
    """The issue's case: Sparklio's own database without the demo's indexes."""
    with database.connect(source) as conn, conn.cursor() as cur:
        cur.execute("select indexrelid::regclass::text from pg_index x join pg_class t on t.oid = x.indrelid "
                    "join pg_namespace n on n.oid = t.relnamespace where n.nspname = 'public' and not x.indisprimary "
                    "and not exists (select from pg_constraint c where c.conindid = x.indexrelid)")
        secondary = [row[0] for row in cur.fetchall()]
    run(source, *(f"drop index {name}" for name in secondary))
    env = {**os.environ, "DATABASE_URL": source}
    done = cli("doctor", "--superset-url", "http://127.0.0.1:9", "--skip", "superset", "--skip", "assets", "--skip", "collector",
               "--skip", "serve", "--skip", "secret-key", "--skip", "reader", "--skip", "rollups",
               "--skip", "rollup-content", "--skip", "reader-functions", "--skip", "reads", check=False, env=env)
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL  indexes: ")]
    assert done.returncode == 1 and len(failed) == len(indexes.INDEXES) == 12
    assert {"create index" + line.split(": create index", 1)[1].split(" (fix:")[0] for line in failed} == \
        {index.statement("public") for index in indexes.INDEXES}
    assert db_indexes(source, "--create").returncode == 0
    done = cli("doctor", "--superset-url", "http://127.0.0.1:9", "--skip", "superset", "--skip", "assets",
               "--skip", "collector", "--skip", "serve", "--skip", "secret-key", "--skip", "reader", "--skip", "rollups",
               "--skip", "rollup-content", "--skip", "reader-functions", "--skip", "reads", check=False, env=env)
    assert "ok    indexes: the 12 indexes" in done.stdout and "FAIL" not in done.stdout, done.stdout
