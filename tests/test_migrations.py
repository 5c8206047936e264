"""Alembic migrations of the views, up and down on a seeded database (real PostgreSQL)."""
import os

import pytest
from alembic.script import ScriptDirectory

from sparklio_bi import database, migrate, views
from tests.conftest import seed_database

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
    migrate.apply_source_ddl(url)
    from sparklio_bi import seed as seeding
    seeding.seed(url, 1.0, 3)
    return url


def test_base_head_base_head_keeps_source_and_restores_each_definition(fresh_seeded):
    url = fresh_seeded
    before = source_fingerprint(url)
    seen = {None: {}}
    for rev in revisions():  # up one step at a time, remembering what each revision holds
        migrate.upgrade(url, rev)
        assert migrate.current(url) == rev
        seen[rev] = view_definitions(url)
    assert set(seen[migrate.head()]) >= {"workflows", "agent_logs", "router_logs", "brands", "assets",
                                         "errors", "users", "projects", "workflow_daily"}
    chain = [None, *revisions()]
    for newer, older in zip(reversed(chain[1:]), reversed(chain[:-1])):  # down one step at a time
        migrate.downgrade(url, older or "base")
        assert migrate.current(url) == older
        assert view_definitions(url) == seen[older], f"downgrade {newer} -> {older} did not restore it"
    assert source_fingerprint(url) == before
    migrate.upgrade(url, "head")
    assert view_definitions(url) == seen[migrate.head()]
    assert source_fingerprint(url) == before


def test_alembic_cli_upgrade_head_works(fresh_seeded, tmp_path):
    import subprocess, sys
    env = dict(os.environ, DATABASE_URL=fresh_seeded)
    done = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=views.SQL_DIR.parent,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert migrate.current(fresh_seeded) == migrate.head()


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
