"""Bad input: one clear line, a non-zero exit, and nothing half done."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.postgres import database, embedded_pg
from sparklio_bi.warehouse import migrate
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_migrations import source_fingerprint, view_definitions

ROOT = Path(__file__).resolve().parent.parent


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
    assert migrate.current(seeded_url, config.load()) == migrate.head()


def test_negative_scale_changes_nothing(seeded_url):
    before = source_fingerprint(seeded_url)
    assert_one_line_error(run_cli("seed", "--scale", "-1", env=env_with(DATABASE_URL=seeded_url)), "--scale")
    assert source_fingerprint(seeded_url) == before


def test_failing_migration_leaves_nothing_half_migrated(make_database):
    """A migration that fails midway (a view's source column is missing) rolls back entirely."""
    url = make_database("half")
    migrate.apply_source_ddl(url, config.load())
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("alter table public.assets drop column review_score")  # breaks the assets view
    assert_one_line_error(run_cli("db", "upgrade", env=env_with(DATABASE_URL=url)), "review_score")
    assert migrate.current(url, config.load()) is None
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from information_schema.views where table_schema = 'analytics'")
        assert cur.fetchone()[0] == 0


# --- issue 7, case 9-11: one clear line, exit 1, nothing created -----------------------------

@pytest.mark.parametrize("scale", ["inf", "1e9", "nan"])
def test_impossible_scales_say_the_maximum(seeded_url, scale):
    before = source_fingerprint(seeded_url)
    result = run_cli("seed", "--scale", scale, env=env_with(DATABASE_URL=seeded_url))
    assert_one_line_error(result, "--scale")
    if scale != "nan":
        assert "at most" in result.stderr and "GiB of memory" in result.stderr
    assert source_fingerprint(seeded_url) == before


@pytest.mark.parametrize("variable, value, fragment", [
    ("DATABASE_URL", "not a url", "DATABASE_URL is not a database URL"),
    ("DATABASE_URL", "postgresql://u:p@127.0.0.1:port/db", "DATABASE_URL is not a database URL"),
    ("DATABASE_URL", "mysql://u:p@127.0.0.1/db", "DATABASE_URL is a mysql URL: sparklio-bi needs PostgreSQL"),
    ("SUPERSET_DATABASE_URL", "sqlite:///x.db", "SUPERSET_DATABASE_URL is a sqlite URL"),
    ("SPARKLIO_PG_PORT", "70000", "SPARKLIO_PG_PORT='70000' is not a port number"),
    ("SPARKLIO_PG_PORT", "0", "SPARKLIO_PG_PORT='0' is not a port number"),
    ("SPARKLIO_REFRESH_SECONDS", "0.5", "SPARKLIO_REFRESH_SECONDS='0.5' is not a number of seconds from 1 to 3600"),
    ("SPARKLIO_REFRESH_SECONDS", "often", "SPARKLIO_REFRESH_SECONDS='often' is not a number of seconds"),
])
def test_bad_settings_are_one_line_and_create_nothing(tmp_path, variable, value, fragment):
    data_dir = tmp_path / "data"
    env = env_with(SPARKLIO_DATA_DIR=str(data_dir), **{variable: value})
    for args in (["db", "start"], ["db", "upgrade"], ["bootstrap", "--no-serve"]):
        assert_one_line_error(run_cli(*args, env=env), fragment)
    assert not data_dir.exists()  # no cluster left behind


def test_a_data_dir_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder\n")
    for path in (a_file, a_file / "data"):
        assert_one_line_error(run_cli("db", "start", env=env_with(SPARKLIO_DATA_DIR=str(path))),
                              f"{a_file} is a file, not a directory")
    assert a_file.read_text() == "not a folder\n"


def test_a_wrong_password_for_the_existing_embedded_server(settings):
    result = run_cli("db", "start", env=env_with(SPARKLIO_PG_PASSWORD="not-the-password"))
    assert_one_line_error(result, "refused the password from SPARKLIO_PG_PASSWORD", "unset SPARKLIO_PG_PASSWORD")


def test_zip_to_an_unwritable_path(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert_one_line_error(run_cli("assets", "zip", "-o", str(a_file / "bundle.zip")), f"cannot write {a_file}")


def broken_bundle(tmp_path, name: str, content: bytes) -> "Path":
    import shutil

    bundle = tmp_path / "assets"
    shutil.copytree(ROOT / "assets", bundle)
    (bundle / "charts" / name).write_bytes(content)
    return bundle


def test_a_non_utf8_asset_is_named(tmp_path):
    bundle = broken_bundle(tmp_path, "Latin1.yaml", b"slice_name: caf\xe9\n")
    result = run_cli("assets", "validate", "--dir", str(bundle))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{bundle / 'charts' / 'Latin1.yaml'}: encoding: not UTF-8 (byte 0xe9 at offset 15)" in result.stderr


def test_a_yaml_alias_bomb_is_refused_without_expanding_it(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10^9 strings
    bundle = broken_bundle(tmp_path, "Bomb.yaml", ("\n".join(levels) + "\n").encode())
    result = subprocess.run(["bash", "-c", f"ulimit -v 2000000; {sys.executable} -m sparklio_bi.cli "
                             f"assets validate --dir {bundle}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "MemoryError" not in result.stderr, result.stderr[-500:]
    assert "aliases (*name) are not allowed" in result.stderr


def test_a_title_longer_than_superset_keeps_fails_validate(tmp_path):
    import yaml

    bundle = tmp_path / "assets"
    import shutil

    shutil.copytree(ROOT / "assets", bundle)
    chart = bundle / "charts" / "Assets_per_day.yaml"
    data = yaml.safe_load(chart.read_text())
    data["slice_name"] = "x" * 300
    chart.write_text(yaml.safe_dump(data))
    result = run_cli("assets", "validate", "--dir", str(bundle))
    assert result.returncode == 1
    assert f"{chart}: slice_name: 300 characters, Superset keeps at most 250" in result.stderr


def test_relative_downgrade_works(make_database):
    url = make_database("relative")
    migrate.apply_source_ddl(url, config.load())
    migrate.upgrade(url, config.load())
    result = run_cli("db", "downgrade", "-1", env=env_with(DATABASE_URL=url))
    assert result.returncode == 0, result.stderr
    scripts = migrate.history()
    assert migrate.current(url, config.load()) == scripts[-2][0]


def test_bootstrap_on_a_missing_database_creates_nothing(settings, tmp_path):
    url = make_url(embedded_pg.server_url(settings)).set(database="no_such_database")
    metadata = url.set(database="no_such_database_superset")
    env = env_with(DATABASE_URL=url.render_as_string(hide_password=False), SPARKLIO_DATA_DIR=str(tmp_path / "d"),
                   SUPERSET_DATABASE_URL=metadata.render_as_string(hide_password=False),
                   SUPERSET_SECRET_KEY="Rt7vQe2LmX9pZk4WsB6nHc1JdF8gYa3U", SUPERSET_ADMIN_PASSWORD="Kestrel-harbour-71-lantern")
    assert_one_line_error(run_cli("bootstrap", "--no-serve", env=env), 'database "no_such_database" does not exist')
    with database.connect(embedded_pg.server_url(settings, "postgres")) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_database where datname like 'no_such_database%'")
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize("username, message", [
    ("", "the user name is empty"),  # finding 8
    ("u" * 300, "the user name is 300 characters long: at most 64"),  # finding 9
    ("two words", "may hold only letters, digits"),
    (".hidden", "may hold only letters, digits"),
    ("quote'd", "may hold only letters, digits"),
])
def test_users_add_refuses_a_bad_name_with_one_line(username, message):
    done = run_cli("users", "add", username, env=dict(os.environ, SPARKLIO_USER_PASSWORD="Kestrel-harbour-71-lantern"))
    assert_one_line_error(done, message)


@pytest.mark.parametrize("password, message", [
    ("short", "the password is too short"),
    ("aaaaaaaaaaaa", "the password is too easy to guess"),  # finding 10
    ("Password123!", "the password is too easy to guess"),
])
def test_users_add_refuses_a_weak_password(password, message):
    done = run_cli("users", "add", "weakling", env=dict(os.environ, SPARKLIO_USER_PASSWORD=password))
    assert_one_line_error(done, message)


def test_users_add_refuses_a_malformed_email():
    done = run_cli("users", "add", "mailer", "--email", "not an address",
                   env=dict(os.environ, SPARKLIO_USER_PASSWORD="Kestrel-harbour-71-lantern"))
    assert_one_line_error(done, "--email 'not an address' is not an e-mail address")


def test_every_command_turns_an_expected_error_into_one_line(monkeypatch, tmp_path):
    """One error mapping for the whole command tree: `assets validate` once forgot its decorator
    and ended in a traceback (`AssetsError: Superset's schema check did not run`)."""
    from click.testing import CliRunner

    from sparklio_bi import cli
    from sparklio_bi.superset import assets

    def refuse(_dir):
        raise assets.AssetsError("Superset's schema check did not run: ['ImportError: boom']")

    monkeypatch.setattr(assets, "validate", refuse)
    done = CliRunner().invoke(cli.main, ["assets", "validate", "--dir", str(tmp_path)])
    assert done.exit_code == 1
    assert done.output.strip().splitlines() == ["Error: Superset's schema check did not run: ['ImportError: boom']"]
    assert done.exc_info[0] is SystemExit
