"""Alembic migrations of the views, up and down on a seeded database (real PostgreSQL)."""
import os
import subprocess

import psycopg2
import pytest
from alembic.script import ScriptDirectory

from sparklio_bi import config
from sparklio_bi.postgres import database, privileges
from sparklio_bi.warehouse import migrate, views
from tests.conftest import CLI, seed_database

SOURCE_CHECKSUM = """
select '{table}', count(*), md5(coalesce(string_agg(t::text, '|' order by t.id), ''))
from public.{table} t
"""


def source_fingerprint(url):
    with database.connect(url) as conn, conn.cursor() as cur:
        out = []
        for table in views.SOURCE_TABLES:
            cur.execute(SOURCE_CHECKSUM.format(table=table))
            out.append(cur.fetchone())
        return out


def view_definitions(url):
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select viewname, pg_get_viewdef(format('analytics.%I', viewname)::regclass) "
                    "from pg_views where schemaname = 'analytics'")
        return dict(cur.fetchall())


def revisions():
    script = ScriptDirectory.from_config(migrate.alembic_config(""))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


@pytest.fixture(scope="module")
def fresh_seeded(make_database):
    url = make_database("migr")
    migrate.apply_source_ddl(url, config.load())
    from sparklio_bi.warehouse import seed as seeding
    seeding.seed(url, config.load(), 1.0, 3)
    return url


def test_base_head_base_head_keeps_source_and_restores_each_definition(fresh_seeded):
    url = fresh_seeded
    before = source_fingerprint(url)
    seen = {None: {}}
    for rev in revisions():  # up one step at a time, remembering what each revision holds
        migrate.upgrade(url, config.load(), rev)
        assert migrate.current(url, config.load()) == rev
        seen[rev] = view_definitions(url)
    assert set(seen[migrate.head()]) >= {"workflows", "agent_logs", "router_logs", "brands", "assets",
                                         "errors", "users", "projects", "workflow_daily"}
    chain = [None, *revisions()]
    for newer, older in zip(reversed(chain[1:]), reversed(chain[:-1])):  # down one step at a time
        migrate.downgrade(url, config.load(), older or "base")
        assert migrate.current(url, config.load()) == older
        assert view_definitions(url) == seen[older], f"downgrade {newer} -> {older} did not restore it"
    assert source_fingerprint(url) == before
    migrate.upgrade(url, config.load(), "head")
    assert view_definitions(url) == seen[migrate.head()]
    assert source_fingerprint(url) == before


def test_alembic_cli_upgrade_head_works(fresh_seeded, tmp_path):
    import subprocess
    import sys
    env = dict(os.environ, DATABASE_URL=fresh_seeded)
    done = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=views.SQL_DIR.parent,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert migrate.current(fresh_seeded, config.load()) == migrate.head()


ALIASES = {"timestamptz": "timestamp with time zone"}


def test_each_view_matches_its_documented_columns(seeded_url):
    latest = {view: versions[-1] for view, versions in views.all_versions().items()}
    with database.connect(seeded_url) as conn, conn.cursor() as cur:
        for view, version in latest.items():
            cur.execute("""select column_name, data_type from information_schema.columns
                           where table_schema = 'analytics' and table_name = %s order by ordinal_position""",
                        (view,))
            actual = [(name, dtype) for name, dtype in cur.fetchall()]
            documented = [(c.name, ALIASES.get(c.type, c.type)) for c in views.documented_columns(view, version)]
            assert actual == documented, f"{view} v{version}"


def test_every_view_file_states_its_grain():
    for view, versions in views.all_versions().items():
        for version in versions:
            text = views.view_file(view, version).read_text()
            assert "-- grain: one row" in text, f"{view} v{version} does not state its grain"


def readable_views(url: str, reader: str) -> dict[str, bool]:
    """Each analytics view -> whether the reader role may select from it."""
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select viewname from pg_views where schemaname = 'analytics' order by 1")
        names = [row[0] for row in cur.fetchall()]
    out = {}
    for name in names:
        try:
            with database.connect(reader) as conn, conn.cursor() as cur:
                cur.execute(f"select 1 from analytics.{name} limit 1")
            out[name] = True
        except psycopg2.Error:
            out[name] = False
    return out


def test_the_reader_role_is_granted_every_view_again_after_each_view_change(fresh_seeded, settings):
    """0005 grants what exists, every later view version is granted when created, and going
    below 0005 takes the grants away."""
    migrate.upgrade(fresh_seeded, config.load(), "head")
    reader = privileges.ensure_login(fresh_seeded, settings)
    assert all(readable_views(fresh_seeded, reader).values())
    migrate.downgrade(fresh_seeded, config.load(), "0005")  # slow_queries back to v1: recreated, so granted again
    assert all(readable_views(fresh_seeded, reader).values())
    migrate.downgrade(fresh_seeded, config.load(), "0004")
    assert not any(readable_views(fresh_seeded, reader).values())
    migrate.upgrade(fresh_seeded, config.load(), "head")
    assert all(readable_views(fresh_seeded, reader).values())


def test_downgrade_that_would_drop_collected_samples_refuses_without_drop_data(make_database):
    url = make_database("samples")
    seed_database(url, scale=0.2)
    from sparklio_bi.warehouse import collect

    collect.collect_once(url, config.load())
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("truncate analytics.service_request_minutes")  # 0020's own refusal would come first
        cur.execute("select count(*) from analytics.system_samples")
        samples = cur.fetchone()[0]
    assert samples > 0
    env = dict(os.environ, DATABASE_URL=url)
    done = subprocess.run([*CLI, "db", "downgrade", "0002"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: downgrading below 0003 drops analytics.system_samples and its {samples} collected samples: "
        "pass --drop-data (alembic: -x drop_data=true) to do it anyway"]
    assert migrate.current(url, config.load()) == migrate.head()  # one transaction: nothing was undone
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from analytics.system_samples")
        assert cur.fetchone()[0] == samples
    done = subprocess.run([*CLI, "db", "downgrade", "0002", "--drop-data"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert migrate.current(url, config.load()) == "0002"


def test_released_sql_is_locked(tmp_path, monkeypatch):
    """Every released view and bundle file is recorded in sql/RELEASED.sha256; an edit is named
    with the fix (a new version and a migration)."""
    assert views.released_problems() == []
    copy = tmp_path / "sql"
    import shutil

    shutil.copytree(views.SQL_DIR, copy)
    monkeypatch.setattr(views, "SQL_DIR", copy)
    monkeypatch.setattr(views, "VIEWS_DIR", copy / "views")
    monkeypatch.setattr(views, "OWNED_DIR", copy / "owned")
    monkeypatch.setattr(views, "RELEASED", copy / "RELEASED.sha256")
    edited = copy / "views" / "workflows__v1.sql"
    edited.write_text(edited.read_text() + "\n-- a quiet fix\n")
    (copy / "views" / "brands__v2.sql").write_text("select 1\n")
    assert views.released_problems() == [
        "sql/views/workflows__v1.sql: changed after its release: restore it and add workflows__v2.sql and a "
        "migration instead",
        "sql/views/brands__v2.sql: not in sql/RELEASED.sha256: once its migration is written, release it with "
        "`cd sql && sha256sum views/brands__v2.sql >> RELEASED.sha256`"]


def test_migrations_use_the_settings_they_are_given(make_database, settings):
    """One loader, passed down: migrate.upgrade's settings reach every migration (views, rollups,
    grants), whatever the environment says."""
    import dataclasses

    url = make_database("passed")
    migrate.apply_source_ddl(url, config.load())
    given = dataclasses.replace(settings, analytics_schema="analytics_given")
    migrate.upgrade(url, given)
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_views where schemaname = 'analytics_given'")
        assert cur.fetchone()[0] == len(migrate.head_versions())
        cur.execute("select count(*) from pg_views where schemaname = 'analytics'")
        assert cur.fetchone()[0] == 0
        cur.execute("select count(*) from analytics_given.rollup_state")
        assert cur.fetchone()[0] == 7  # five rollups, the users' project counts and the active users
    migrate.downgrade(url, given, "base")
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_views where schemaname = 'analytics_given'")
        assert cur.fetchone()[0] == 0
