"""Issue 16: Superset's analytics connection through PgBouncer in transaction pooling (Debian's
`pgbouncer`, installed by `make test`; the session's `serve` runs it), the reader role's settings
in force on every pooled server connection. Because the session's Superset reads through it, the
SQL Lab refusals, the statement timeout and every chart/reference test of the suite run through
the pooler too; the first test below proves that they do."""
from __future__ import annotations

import concurrent.futures
import contextlib
import time
import uuid

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from sparklio_bi.postgres import database, pooler, privileges
from tests.conftest import READER_STATEMENT_TIMEOUT, csrf_header, database_uri
from tests.test_security import sql_lab

pytestmark = pytest.mark.skipif(pooler.binary() is None, reason="make test installs Debian's pgbouncer")


@pytest.fixture(scope="module")
def pooled(settings, server) -> str:
    """The reader's URL through the PgBouncer of the session's serve."""
    return make_url(privileges.reader_url(embedded_url(settings), settings)).set(
        host="127.0.0.1", port=settings.pooler_port).render_as_string(hide_password=False)


def embedded_url(settings) -> str:
    return database.analytics_url(settings, start=False)


def reader_backends(settings) -> set[int]:
    with database.connect(embedded_url(settings)) as conn, conn.cursor() as cur:
        cur.execute("select pid from pg_stat_activity where usename = %s", (settings.reader_role,))
        return {row[0] for row in cur.fetchall()}


def server_connection_of(api, settings, marker: str) -> int:
    """The pid of the server connection that runs a SQL Lab query holding `marker`, seen by the
    superuser while the query waits on a lock the test holds (the reader may not ask for its own
    pid: issue 31's rules refuse pg_backend_pid())."""
    with database.connect(embedded_url(settings)) as lock, lock.cursor() as cur:
        cur.execute("lock table public.brands in access exclusive mode")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(sql_lab, api, f"select '{marker}' as probe, count(*) as n from brands", csrf_header(api))
            with database.connect(embedded_url(settings), autocommit=True) as watch, watch.cursor() as look:
                while True:
                    look.execute("select pid from pg_stat_activity where usename = %s and state = 'active' "
                                 "and strpos(query, %s) > 0", (settings.reader_role, marker))
                    found = [row[0] for row in look.fetchall()]
                    if found or answer.done():
                        break
                    time.sleep(0.02)
            lock.rollback()
            response = answer.result()
    assert response.status_code == 200, response.text[:300]
    assert len(found) == 1, f"{len(found)} server connections ran {marker!r}"
    return found[0]


def test_superset_reads_through_the_pooler(api, server, settings):
    for name in ("Sparklio Analytics", "Sparklio Server Health"):  # one server: both through the pooler
        uri = database_uri(api, name)
        assert make_url(uri).port == settings.pooler_port and make_url(uri).port != settings.pg_port, uri
    pids = set()
    for number in range(12):  # PgBouncer serves Superset's connections from a few server connections
        pids.add(server_connection_of(api, settings, f"pooler probe {uuid.uuid4()} {number}"))
    assert len(pids) <= pooler.POOL_SIZE
    assert pids <= reader_backends(settings)  # the pooled server connections outlive Superset's


def test_every_pooled_connection_has_the_roles_settings_whatever_a_client_set(pooled, settings):
    """More clients than the pool has server connections, each in a transaction of its own (so each
    holds a server connection), first after clients tried to change their sessions: PgBouncer's
    DISCARD ALL after every transaction leaves none of it for the next client."""
    with contextlib.ExitStack() as stack:
        spoilers = [stack.enter_context(database.connect(pooled, autocommit=True)) for _ in range(3)]
        for conn in spoilers:
            with conn.cursor() as cur:
                cur.execute("set statement_timeout = 0")
                cur.execute("set timezone = 'America/New_York'")
                cur.execute("set default_transaction_read_only = off")
                cur.execute("set search_path = public")
    seen = []
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(database.connect(pooled)) for _ in range(pooler.POOL_SIZE)]
        for conn in clients:  # not autocommit: each keeps its server connection until it ends
            with conn.cursor() as cur:
                cur.execute("select pg_backend_pid(), current_setting('statement_timeout'), "
                            "current_setting('TimeZone'), current_setting('transaction_read_only'), "
                            "current_setting('search_path'), current_user")
                seen.append(cur.fetchone())
    assert len({row[0] for row in seen}) == pooler.POOL_SIZE  # every server connection of the pool
    assert {row[1:] for row in seen} == {(READER_STATEMENT_TIMEOUT, settings.timezone, "on", '"$user", public',
                                         settings.reader_role)}


def test_a_write_through_the_pooler_is_refused(pooled):
    with database.connect(pooled) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cur.execute("create temporary table t (x int)")


def test_a_statement_through_the_pooler_stops_at_the_timeout_and_frees_its_connection(pooled):
    with database.connect(pooled) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg2.errors.QueryCanceled):
            cur.execute("select pg_sleep(60)")
    with database.connect(pooled) as conn, conn.cursor() as cur:
        cur.execute("select 1")
        assert cur.fetchone() == (1,)


def test_db_pooler_runs_pgbouncer_before_the_database_as_compose_does(settings, tmp_path):
    """`sparklio-bi db pooler` (docker-compose's pgbouncer service): PgBouncer in the foreground
    on SPARKLIO_POOLER_PORT, the reader's settings in force through it; SIGTERM stops it."""
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import free_port

    port = free_port()
    env = dict(os.environ, SPARKLIO_POOLER_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "-m", "sparklio_bi.cli", "db", "pooler"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = make_url(privileges.reader_url(embedded_url(settings), settings)).set(port=port) \
        .render_as_string(hide_password=False)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with database.connect(url) as conn, conn.cursor() as cur:
                    cur.execute("select current_setting('statement_timeout'), current_setting('transaction_read_only')")
                    assert cur.fetchone() == (READER_STATEMENT_TIMEOUT, "on")
                break
            except database.DatabaseError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.3)
    finally:
        proc.terminate()
    assert proc.wait(10) is not None
    assert f"PgBouncer on 127.0.0.1:{port}" in proc.stderr.read()
