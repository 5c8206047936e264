"""`sparklio-bi doctor` on the shared install: all ok, then one thing broken at a time (and put
back), each seen as its own FAIL line with the command that fixes it."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sparklio_bi.postgres import database
from tests.conftest import api_list, cli, csrf_header
from tests.test_cli import run_cli

COLLECT_INTERVAL = 5  # the shared server's collector (conftest `server`)


def doctor(server: str, env: dict | None = None, interval: float = COLLECT_INTERVAL):
    done = run_cli("doctor", "--superset-url", server, "--collect-interval", str(interval), env=env or dict(os.environ))
    lines = [line for line in done.stdout.splitlines() if line.startswith(("ok ", "FAIL "))]
    return done.returncode, {line.split()[1].rstrip(":"): line for line in lines}


def failing(lines: dict[str, str]) -> dict[str, str]:
    return {name: line for name, line in lines.items() if line.startswith("FAIL")}


def test_a_healthy_install_is_all_ok(server):
    code, lines = doctor(server)
    assert failing(lines) == {} and code == 0, "\n".join(lines.values())
    assert set(lines) == {"database", "migrations", "views", "indexes", "reader", "functions", "reads", "secret", "superset",
                          "assets", "collector", "rollups", "rollup", "serve", "alerts", "disk"}
    assert "off: no REDIS_URL" in lines["alerts"]
    assert "Superset reads through PgBouncer" in lines["reads"]  # make test installs it: serve runs it


def test_a_stopped_database(tmp_path, server):
    env = dict(os.environ, SPARKLIO_DATA_DIR=str(tmp_path / "never-started"))
    code, lines = doctor(server, env)
    assert code == 1
    assert "the embedded PostgreSQL is not running (fix: sparklio-bi db start)" in lines["database"]
    assert lines["migrations"].startswith("FAIL") and "database is down" in lines["migrations"]
    assert not (tmp_path / "never-started" / "pg").exists()  # doctor started nothing


def test_a_dropped_view(server, bootstrapped):
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("drop view analytics.users")
    try:
        code, lines = doctor(server)
        assert code == 1
        assert set(failing(lines)) == {"views"}
        assert "analytics.users was missing (fix: sparklio-bi db upgrade" in lines["views"]
    finally:
        cli("db", "upgrade")


def test_a_lost_secret_key(server, settings):
    key = settings.data_dir / "superset-secret-key"
    aside = key.with_name("key-aside")
    key.rename(aside)
    try:
        code, lines = doctor(server)
        assert code == 1
        assert f"FAIL  secret: {key} is missing" in lines["secret"] or "secret key" in lines["secret"]
        assert "recover-secret-key" in lines["secret"]
        assert "not checked" in lines["assets"]
    finally:
        aside.rename(key)


def test_a_chart_edited_in_superset(server, api):
    chart = next(c for c in api_list(api, "chart") if c["slice_name"] == "Intent distribution")
    response = api.put(f"{api.base}/api/v1/chart/{chart['id']}", json={"slice_name": "Intent distribution (edited)"},
                       headers=csrf_header(api), timeout=30)
    assert response.status_code == 200, response.text
    try:
        code, lines = doctor(server)
        assert code == 1
        assert set(failing(lines)) == {"assets"}
        assert "charts/Intent_distribution.yaml" in lines["assets"]
        assert "sparklio-bi assets import" in lines["assets"]
    finally:
        cli("assets", "import")


def collector_pid(settings, command: tuple[bytes, ...] = (b"collect", b"--interval")) -> int:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            environ = (cmdline.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(word in args for word in command) and \
                f"SPARKLIO_DATA_DIR={settings.data_dir}".encode() in environ:
            return int(cmdline.parent.name)
    raise AssertionError(f"the shared server's {b' '.join(command).decode()} is not running")


def test_a_stopped_collector(server, settings):
    """Stopped, the collector's last sample grows older than twice the interval doctor is told
    (1 s here, so the test waits 2.5 s, not twice the served collector's 5 s)."""
    pid = collector_pid(settings)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(2.5)
        code, lines = doctor(server, interval=1)
        assert code == 1
        assert set(failing(lines)) == {"collector"}
        assert "sparklio-bi collect --interval 1" in lines["collector"]
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_stopped_rollup_refresher(server, settings, bootstrapped):
    """`serve` runs the rollups' refresher; stopped (its last refresh 10 minutes old), doctor
    names it and how to run it."""
    pid = collector_pid(settings, (b"rollups", b"refresh", b"--every"))
    os.kill(pid, signal.SIGSTOP)
    try:
        with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
            cur.execute("update analytics.rollup_state set refreshed_at = now() - interval '10 minutes'")
        code, lines = doctor(server)
        assert code == 1
        assert set(failing(lines)) == {"rollups"}
        assert f"sparklio-bi rollups refresh --every {settings.refresh_seconds:g}" in lines["rollups"]
    finally:
        os.kill(pid, signal.SIGCONT)


def stopped_outside_a_refresh(pid: int, url: str) -> None:
    """SIGSTOP the refresher while it holds no refresh lock (else every refresh would wait on it)."""
    from sparklio_bi.warehouse import rollups

    while True:
        os.kill(pid, signal.SIGSTOP)
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select count(*) from pg_locks where locktype = 'advisory' and objid = %s", (rollups.LOCK,))
            if cur.fetchone()[0] == 0:
                return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.5)


def test_damaged_rollups_are_named_and_repaired(server, settings, bootstrapped):
    """Finding 7: two past days deleted from agent_rollup by hand; doctor names them, and a plain
    `rollups refresh` (not only --full) recomputes exactly those days."""
    from tests.test_rollups import differences

    url = bootstrapped["url"]
    pid = collector_pid(settings, (b"rollups", b"refresh", b"--every"))
    stopped_outside_a_refresh(pid, url)
    try:
        cli("rollups", "refresh")  # a fresh last refresh: the test before may have left it 10 minutes old
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select distinct period_start from analytics.agent_rollup "
                        "where period_start < date_trunc('day', now()) order by 1 desc limit 2 offset 1")
            days = [row[0] for row in cur.fetchall()]
            cur.execute("delete from analytics.agent_rollup where period_start = any(%s)", (days,))
        code, lines = doctor(server)
        assert code == 1 and set(failing(lines)) == {"rollup"}, "\n".join(lines.values())
        for day in days:
            assert f"{day:%Y-%m-%d}" in lines["rollup"]
        assert "(fix: sparklio-bi rollups refresh" in lines["rollup"]
        repaired = cli("rollups", "refresh").stdout
        assert "repaired agent: " + ", ".join(f"{day:%Y-%m-%d}" for day in sorted(days)) in repaired, repaired
        with database.connect(url) as conn, conn.cursor() as cur:
            assert differences(cur) == {}
    finally:
        os.kill(pid, signal.SIGCONT)
        cli("rollups", "refresh")  # whatever failed above, the next tests find whole rollups
    code, lines = doctor(server)
    assert code == 0, "\n".join(lines.values())
