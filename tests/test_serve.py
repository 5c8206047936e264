"""`sparklio-bi serve` supervises its children (issue 14, findings 4-6): a child that dies comes
back and doctor says so, serve's death (even SIGKILL) takes its children with it, a second serve
names the first, a start-up error that will not go away stops serve at once, and the collector
lives through a database outage."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from sparklio_bi import config
from sparklio_bi.ops import server
from sparklio_bi.postgres import database, embedded_pg
from sparklio_bi.superset import secret_key
from sparklio_bi.warehouse import migrate
from tests.conftest import free_port, start_server
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_doctor import doctor


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds:g}s: {what}")


def children_of(settings, base: str) -> dict[str, dict]:
    port = int(base.rsplit(":", 1)[1])
    status = json.loads(server.status_file(settings.data_dir, port).read_text())
    return {child["name"]: child for child in status["children"]}


def test_a_child_that_dies_is_restarted_and_doctor_says_so(server, settings):
    before = children_of(settings, server)["collector"]
    os.kill(before["pid"], signal.SIGKILL)
    after = wait_for(lambda: (c := children_of(settings, server)["collector"])["up"] and
                     c["restarts"] == before["restarts"] + 1 and c, 15, "the collector restarted")
    assert after["pid"] != before["pid"] and after["last_exit"] == -signal.SIGKILL
    assert psutil.Process(after["pid"]).is_running()
    code, lines = doctor(server)
    assert lines["serve"].startswith("ok") and f"collector restarted {after['restarts']}x" in lines["serve"], lines


def test_a_killed_serve_takes_its_children_with_it(bootstrapped, settings):
    proc, base = start_server("--workers", "1", "--collect-interval", "5", log_name="killed-serve.log")
    port = int(base.rsplit(":", 1)[1])
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 5  # PgBouncer, gunicorn, its worker, the refresher, the collector
    assert any("pgbouncer" in " ".join(child.cmdline()) for child in children)  # run as another user, as root
    proc.kill()  # SIGKILL: serve runs no code of its own
    proc.wait(10)
    gone, alive = psutil.wait_procs(children, timeout=45)
    assert alive == [], [p.cmdline() for p in alive]
    assert not embedded_pg.port_taken(port) and server.running_serve(settings.data_dir, port) is None


def test_a_second_serve_names_the_first(server):
    port = server.rsplit(":", 1)[1]
    done = run_cli("serve", "--port", port, "--collect-interval", "0")
    assert_one_line_error(done, "sparklio-bi serve (pid ")
    assert f"already serves port {port}" in done.stderr


def test_a_port_held_by_an_orphaned_gunicorn_is_named(bootstrapped, settings):
    """What a serve killed before this version left behind: its gunicorn, still serving."""
    from sparklio_bi.superset import app

    port = free_port()
    orphan = subprocess.Popen(server.server_command("127.0.0.1", port, 1, settings.data_dir),
                              env=app.environment(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: embedded_pg.port_taken(port), 30, "gunicorn bound its port")
        done = run_cli("serve", "--port", str(port), "--collect-interval", "0")
        assert_one_line_error(done, f"a gunicorn serving Superset (pid {orphan.pid}) that no sparklio-bi serve "
                                    f"supervises (left by an earlier one): stop it with `kill {orphan.pid}`")
    finally:
        orphan.terminate()
        orphan.wait(40)


def test_serve_stops_at_once_when_the_secret_key_is_missing(bootstrapped, settings):
    key = secret_key.key_file(settings)
    aside = key.with_name("superset-secret-key.aside")
    key.rename(aside)
    try:
        started = time.monotonic()
        done = run_cli("serve", "--port", str(free_port()), "--collect-interval", "0")
        assert time.monotonic() - started < 30
        assert_one_line_error(done, "is missing but Superset's metadata database holds secrets")
    finally:
        aside.rename(key)


def test_a_gunicorn_whose_workers_cannot_boot_stops_serve(tmp_path):
    """Superset's config refusing to start inside a gunicorn worker halts gunicorn (its
    WORKER_BOOT_ERROR) instead of the endless respawn the issue saw; serve then stops."""
    children = [server.Child("gunicorn", [sys.executable, "-c", "raise SystemExit(3)"])]
    children[0].start()
    with pytest.raises(server.ServeError, match="workers failed to boot"):
        server.supervise(children, server.status_file(tmp_path, 1), lambda line: None)


def test_the_collector_lives_through_a_database_outage(make_database, settings):
    url = make_database("outage")
    migrate.apply_source_ddl(url, config.load())
    migrate.upgrade(url, config.load())
    name = url.rsplit("/", 1)[1]
    env = dict(os.environ, DATABASE_URL=url)
    collector = subprocess.Popen([sys.executable, "-m", "sparklio_bi.cli", "collect", "--interval", "1"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    postgres = embedded_pg.server_url(settings, "postgres")

    def samples() -> int:
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select count(distinct sampled_at) from analytics.system_samples")
            return cur.fetchone()[0]

    try:
        wait_for(lambda: samples() >= 2, 20, "samples before the outage")
        with database.connect(postgres, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f'alter database "{name}" allow_connections false')
            cur.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,))
        time.sleep(4)
        assert collector.poll() is None, collector.stderr.read()
        with database.connect(postgres, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f'alter database "{name}" allow_connections true')
        during = samples()
        wait_for(lambda: samples() >= during + 2, 20, "samples after the outage")
    finally:
        collector.terminate()
        _, errors = collector.communicate(timeout=20)
    assert "sampling failed, trying again in 1s" in errors
