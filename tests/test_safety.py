"""Nothing lost: the commands that delete or replace refuse what the bundle does not own
(issue 7's data-loss cases, each reproduced as the operator met it)."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sparklio_bi import config
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import views
from tests.conftest import CLI, cli, free_port
from tests.test_cli import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"


def application_database(make_database) -> str:
    """A database shaped like Sparklio's own: the same tables, made by the application (no
    sparklio-bi marker), holding a real user."""
    url = make_database("app")
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(views.render(views.SOURCE_DDL, config.load()))
        cur.execute("insert into public.users (id, email, created_at) values (1, 'real@customer.example', now())")
        cur.execute("insert into public.brands (id, name, created_at) values (1, 'Real brand', now())")
        cur.execute("insert into public.projects (id, brand_id, user_id, name, created_at) "
                    "values (1, 1, 1, 'Launch', now())")
    return url


def table_checksums(url: str) -> dict[str, str]:
    with database.connect(url) as conn, conn.cursor() as cur:
        out = {}
        for table in views.SOURCE_TABLES:
            cur.execute(f"select count(*) || ':' || md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
                        f"from public.{table} t")
            out[table] = cur.fetchone()[0]
        return out


def test_seed_refuses_a_database_it_did_not_create(make_database):
    url = application_database(make_database)
    before = table_checksums(url)
    result = run_cli("seed", "--scale", "0.1", env=dict(os.environ, DATABASE_URL=url))
    assert_one_line_error(result, "were not created by sparklio-bi", "--replace-application-data")
    assert table_checksums(url) == before


def test_seed_replaces_application_rows_only_when_told_loudly(make_database):
    url = application_database(make_database)
    result = run_cli("seed", "--scale", "0.1", "--replace-application-data", env=dict(os.environ, DATABASE_URL=url))
    assert result.returncode == 0, result.stderr
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from public.users where email = 'real@customer.example'")
        assert cur.fetchone()[0] == 0


def test_seed_replaces_the_bundles_own_demo_tables(make_database):
    url = make_database("demo")
    first = run_cli("seed", "--scale", "0.1", env=dict(os.environ, DATABASE_URL=url))  # creates and marks them
    again = run_cli("seed", "--scale", "0.1", "--seed", "9", env=dict(os.environ, DATABASE_URL=url))
    assert first.returncode == 0 and again.returncode == 0, again.stderr


def files_under(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder`: path -> content digest ('dir' for folders)."""
    return {p.relative_to(folder).as_posix(): "dir" if p.is_dir() else hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def test_export_keeps_every_file_it_does_not_own(bootstrapped, tmp_path):
    bundle = tmp_path / "assets"
    shutil.copytree(ASSETS, bundle)
    foreign = {  # what an operator keeps beside the bundle: a nested clone, notes, an empty folder
        "vendor/other-bundle/charts/Their_chart.yaml": "slice_name: theirs\n",
        "vendor/other-bundle/.git/refs/tags/.keep": "",
        "charts/drafts/Draft.yaml": "slice_name: draft\n",
        "notes.yaml": "todo: review\n",
        "README.md": "# our dashboards\n",
    }
    for rel, text in foreign.items():
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_text(text)
    (bundle / ".git" / "refs" / "tags").mkdir(parents=True)
    stale = bundle / "charts" / "A_chart_deleted_in_Superset.yaml"
    stale.write_text((ASSETS / "charts" / "Assets_per_day.yaml").read_text())
    before = files_under(bundle)
    cli("assets", "export", "--dir", str(bundle))
    after = files_under(bundle)
    assert not stale.exists()  # the bundle's own file of an object Superset no longer has
    lost = sorted(set(before) - set(after) - {stale.relative_to(bundle).as_posix()})
    assert lost == []
    for rel, text in foreign.items():
        assert (bundle / rel).read_text() == text
    assert {k: v for k, v in after.items() if not k.startswith(("vendor", "charts/drafts", ".git"))
            and k not in foreign} == files_under(ASSETS)


def test_export_refuses_a_folder_that_is_not_a_bundle(bootstrapped, tmp_path):
    folder = tmp_path / "work"
    (folder / "project").mkdir(parents=True)
    (folder / "project" / "config.yaml").write_text("keep: me\n")
    (folder / "empty").mkdir()
    before = files_under(folder)
    result = run_cli("assets", "export", "--dir", str(folder))
    assert_one_line_error(result, "is not a bundle (no metadata.yaml) and not empty")
    assert files_under(folder) == before
    empty = tmp_path / "new-bundle"
    empty.mkdir()
    assert run_cli("assets", "export", "--dir", str(empty)).returncode == 0
    assert (empty / "metadata.yaml").is_file()


# --- lost or inconsistent local state -------------------------------------------------------

def superset_import_check(env: dict) -> subprocess.CompletedProcess:
    """Load Superset's configuration as every Superset process does (gunicorn, CLI, bootstrap)."""
    return subprocess.run([sys.executable, "-c", "import superset.config"], capture_output=True, text=True,
                          timeout=120, env=dict(env, SUPERSET_CONFIG_PATH=str(ROOT / "superset_config.py")))


def test_a_lost_secret_key_file_is_never_replaced_silently(bootstrapped, settings, tmp_path):
    """The data dir without its superset-secret-key, over a metadata database that holds an
    encrypted password: Superset refuses to start and says how to recover; no new key is made."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(settings.data_dir / "pg-password", data_dir / "pg-password")
    env = {k: v for k, v in os.environ.items() if k != "SUPERSET_SECRET_KEY"}
    done = superset_import_check(dict(env, SPARKLIO_DATA_DIR=str(data_dir)))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {data_dir / 'superset-secret-key'} is missing but Superset's metadata database "
                           "holds secrets"), last
    assert "recover-secret-key" in last and "re-encrypt-secrets" in last
    assert not (data_dir / "superset-secret-key").exists()


def test_a_key_that_does_not_match_is_refused_before_anything_runs(bootstrapped):
    env = dict(os.environ, SUPERSET_SECRET_KEY="a-different-key-that-is-long-enough-0123456789")
    done = run_cli("assets", "import", env=env)
    assert done.returncode == 1
    assert "does not decrypt the stored password of Sparklio Analytics" in done.stderr.strip().splitlines()[-1]


@pytest.mark.slow  # 20-55 s: `pytest -m 'not slow'` leaves it out of the inner loop
def test_recover_secret_key_re_injects_the_bundles_password(make_database):
    """A deployment whose SUPERSET_SECRET_KEY was lost: a new key, `recover-secret-key`, and the
    bundle works again (its database password encrypted with the new key)."""
    from sparklio_bi.superset import secret_key

    app, metadata = make_database("recover_app"), make_database("recover_meta")
    env = dict(os.environ, DATABASE_URL=app, SUPERSET_DATABASE_URL=metadata, SUPERSET_ADMIN_PASSWORD="Kestrel-harbour-71-lantern",
               SUPERSET_SECRET_KEY="the-first-key-Qm4vT8xZ2rW6yN1pK9sL3dH7")
    cli("bootstrap", "--no-serve", "--demo", "--scale", "0.1", env=env)
    env["SUPERSET_SECRET_KEY"] = "the-second-key-Jb5cX1fV7nR3tY9wE2uA6kP4"
    assert "does not decrypt" in run_cli("assets", "import", env=env).stderr
    done = run_cli("recover-secret-key", env=env)
    assert done.returncode == 0, done.stderr
    assert "re-injected" in done.stdout
    assert secret_key.undecryptable(metadata, env["SUPERSET_SECRET_KEY"]) == []
    assert run_cli("assets", "import", env=env).returncode == 0


def test_a_lost_admin_password_file_resets_the_password_and_says_so(bootstrapped, server, settings):
    env = {k: v for k, v in os.environ.items() if k != "SUPERSET_ADMIN_PASSWORD"}
    env["SUPERSET_ADMIN_USERNAME"] = "ops"
    kept = settings.data_dir / "superset-admin-password"
    try:
        cli("bootstrap", "--no-serve", "--scale", "3", env=env)
        first = kept.read_text().strip()
        kept.unlink()
        again = cli("bootstrap", "--no-serve", "--scale", "3", env=env)
        second = kept.read_text().strip()
        assert f"'ops' exists but its password file was missing: password reset to {second}" in again.stdout
        assert kept.stat().st_mode & 0o077 == 0
        login = lambda password: requests.post(f"{server}/api/v1/security/login", timeout=30, json={  # noqa: E731
            "username": "ops", "password": password, "provider": "db"}).status_code
        assert (login(second), login(first)) == (200, 401)
    finally:
        kept.unlink(missing_ok=True)


def test_two_bootstraps_at_once_the_second_says_so(bootstrapped, settings):
    first = subprocess.Popen([*CLI, "bootstrap", "--no-serve", "--scale", "3"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    lock = settings.data_dir / ".bootstrap.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip() == str(first.pid)):
        time.sleep(0.05)
    second = run_cli("bootstrap", "--no-serve", "--scale", "3")
    assert first.wait(300) == 0, first.stderr
    assert_one_line_error(second, f"another sparklio-bi bootstrap is running on {settings.data_dir}",
                          f"pid {first.pid}")


def fresh_install_env(tmp_path: Path) -> dict:
    return dict(os.environ, SPARKLIO_DATA_DIR=str(tmp_path / "data"), SPARKLIO_PG_PORT=str(free_port()))


def test_two_first_starts_at_once_leave_a_working_server(tmp_path):
    env = fresh_install_env(tmp_path)
    starts = [subprocess.Popen([*CLI, "db", "start"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(2)]
    try:
        results = [(p.wait(180), p.stderr.read()) for p in starts]
        assert [code for code, _ in results] == [0, 0], results
        url = run_cli("db", "url", env=env).stdout.strip()
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select 1")
            assert cur.fetchone() == (1,)
    finally:
        run_cli("db", "stop", env=env)


def test_a_stale_pid_file_naming_another_process_is_seen_through(tmp_path):
    env = fresh_install_env(tmp_path)
    assert run_cli("db", "start", env=env).returncode == 0
    assert run_cli("db", "stop", env=env).returncode == 0
    other = subprocess.Popen(["sleep", "120"])
    pidfile = tmp_path / "data" / "pg" / "postmaster.pid"
    try:
        pidfile.write_text(f"{other.pid}\n{tmp_path / 'data' / 'pg'}\n0\n{env['SPARKLIO_PG_PORT']}\n")
        status = run_cli("db", "status", env=env)
        assert status.returncode == 3 and status.stdout.startswith("stopped"), status.stdout
        started = run_cli("db", "start", env=env)
        assert started.returncode == 0, started.stderr
        assert run_cli("db", "stop", env=env).stdout.strip() == "stopped"
        assert other.poll() is None  # the other program was left alone
    finally:
        other.kill()
        run_cli("db", "stop", env=env)


def test_serve_exits_1_with_the_reason_when_it_cannot_bind(bootstrapped):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_error(run_cli("serve", "--port", str(port), "--collect-interval", "0"),
                              f"port {port} on 127.0.0.1 is taken")
    assert_one_line_error(run_cli("serve", "--port", "99999", "--collect-interval", "0"), "--port 99999")


def test_views_dropped_or_changed_behind_the_bundles_back_are_repaired(bootstrapped, settings):
    url = bootstrapped["url"]
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select pg_get_viewdef('analytics.projects'::regclass)")
        definition = cur.fetchone()[0].rstrip().rstrip(";")
        cur.execute("drop view analytics.router_logs")
        cur.execute(f"create or replace view analytics.projects as select * from ({definition}) d where false")
        # a view another view is built on (errors reads agent_logs)
        cur.execute("select pg_get_viewdef('analytics.agent_logs'::regclass)")
        definition = cur.fetchone()[0].rstrip().rstrip(";")
        cur.execute(f"create or replace view analytics.agent_logs as select * from ({definition}) d where false")
    upgraded = run_cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "repaired analytics.router_logs was missing: recreated from sql/views/router_logs__v1.sql" in upgraded.stdout
    assert "repaired analytics.projects differed from its file" in upgraded.stdout
    assert "repaired analytics.agent_logs differed from its file" in upgraded.stdout
    assert "repaired analytics.errors was dropped with a view it reads: recreated from sql/views/errors__v2.sql" \
        in upgraded.stdout
    from sparklio_bi.postgres import privileges

    with database.connect(privileges.reader_url(url, settings)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from analytics.projects")
        assert cur.fetchone()[0] > 0
        cur.execute("select count(*) from analytics.router_logs")
        assert cur.fetchone()[0] > 0
        cur.execute("select count(*) from analytics.errors")
        assert cur.fetchone()[0] > 0
    again = run_cli("db", "upgrade")
    assert "repaired" not in again.stdout  # nothing left to repair


def test_server_files_are_private_and_in_the_data_dir(server, settings):
    port = server.rsplit(":", 1)[1]
    assert (settings.data_dir / f"gunicorn-{port}.ctl").exists()
    assert (settings.data_dir / "pg.log").stat().st_mode & 0o077 == 0


def test_a_password_with_url_characters_works(tmp_path):
    env = dict(fresh_install_env(tmp_path), SPARKLIO_PG_PASSWORD="p@ss/w:rd#1?")
    try:
        assert run_cli("db", "start", env=env).returncode == 0
        url = run_cli("db", "url", env=env).stdout.strip()
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select current_user")
            assert cur.fetchone() == ("postgres",)
    finally:
        run_cli("db", "stop", env=env)
