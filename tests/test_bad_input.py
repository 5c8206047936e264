"""Bad input: one clear line, a non-zero exit, and nothing half done."""
import os

from sqlalchemy.engine import make_url

from sparklio_bi import database, migrate
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_migrations import source_fingerprint, view_definitions


def env_with(**values):
    return dict(os.environ, **values)


def test_unreachable_database_url(settings):
    url = "postgresql://postgres:x@127.0.0.1:1/sparklio"
    for args in (["db", "upgrade"], ["db", "current"], ["seed", "--scale", "1"]):
        assert_one_line_error(run_cli(*args, env=env_with(DATABASE_URL=url)), "cannot connect", "127.0.0.1:1")


def test_wrong_password(seeded_url):
    url = make_url(seeded_url).set(password="wrong").render_as_string(hide_password=False)
    result = run_cli("db", "upgrade", env=env_with(DATABASE_URL=url))
    assert_one_line_error(result, "password authentication failed")
    assert "wrong" not in result.stderr


def test_database_without_source_tables(make_database):
    url = make_database("empty")
    assert_one_line_error(run_cli("db", "upgrade", env=env_with(DATABASE_URL=url)), "no source tables")
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from information_schema.views where table_schema = 'analytics'")
        assert cur.fetchone()[0] == 0


def test_unknown_revision_changes_nothing(seeded_url):
    before = view_definitions(seeded_url)
    for args in (["db", "upgrade", "9999"], ["db", "downgrade", "nope"]):
        assert_one_line_error(run_cli(*args, env=env_with(DATABASE_URL=seeded_url)), "unknown revision")
    assert view_definitions(seeded_url) == before
    assert migrate.current(seeded_url) == migrate.head()


def test_negative_scale_changes_nothing(seeded_url):
    before = source_fingerprint(seeded_url)
    assert_one_line_error(run_cli("seed", "--scale", "-1", env=env_with(DATABASE_URL=seeded_url)), "--scale")
    assert source_fingerprint(seeded_url) == before


def test_failing_migration_leaves_nothing_half_migrated(make_database):
    """A migration that fails midway (a view's source column is missing) rolls back entirely."""
    url = make_database("half")
    migrate.apply_source_ddl(url)
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("alter table public.assets drop column review_score")  # breaks the assets view
    assert_one_line_error(run_cli("db", "upgrade", env=env_with(DATABASE_URL=url)), "review_score")
    assert migrate.current(url) is None
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from information_schema.views where table_schema = 'analytics'")
        assert cur.fetchone()[0] == 0
