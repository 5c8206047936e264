"""The embedded PostgreSQL: start, stop, status, restart with its data, a taken port."""
import socket

import pytest

from sparklio_bi import config, database, embedded_pg
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
        cur.execute("select count(*) from pg_extension where extname = 'pg_stat_statements'")
        assert cur.fetchone()[0] == 1
        cur.execute("show shared_preload_libraries")
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
