"""Issue 16: Superset's analytics engines kept and pooled per process
(sparklio_bi/superset/engines.py). Superset 6.1.0 made an engine with a NullPool per query, so
every chart opened new PostgreSQL connections; a kept engine reuses them, and a reused
connection carries nothing of the session before it (the reader role's settings are in force)."""
from __future__ import annotations

import os
import time

import psutil
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool

from sparklio_bi.postgres import database, privileges
from sparklio_bi.superset import engines
from tests.conftest import READER_STATEMENT_TIMEOUT, chart_ids, database_uri


@pytest.fixture(scope="module")
def reader(settings, bootstrapped) -> str:
    """The reader role's URL, straight to the embedded server."""
    return privileges.reader_url(database.analytics_url(settings, start=False), settings)


@pytest.fixture
def kept():
    """A kept create_engine of its own; its engines closed after the test."""
    create = engines.keeping(sqlalchemy.create_engine)
    yield create
    for _, engine in list(create.kept.values()):
        engine.dispose()


def backend(engine) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.exec_driver_sql(
            "select pg_backend_pid(), current_setting('statement_timeout'), current_setting('TimeZone'), "
            "current_setting('transaction_read_only')").one())


def owner_query(settings, sql: str, *args) -> list[tuple]:
    with database.connect(database.analytics_url(settings, start=False), autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def gone(settings, pid: int, seconds: float = 5) -> bool:
    """The server process `pid` ended (a closed connection's backend exits just after)."""
    deadline = time.monotonic() + seconds
    while owner_query(settings, "select 1 from pg_stat_activity where pid = %s", pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_one_engine_per_address_and_its_connection_reused(kept, reader, settings):
    first = kept(make_url(reader), poolclass=NullPool, connect_args={})
    assert kept(make_url(reader), poolclass=NullPool, connect_args={}) is first
    assert isinstance(first.pool, QueuePool)
    assert backend(first)[0] == backend(first)[0]  # the same server process: no new connection
    assert kept(make_url(reader), poolclass=NullPool, connect_args={"application_name": "x"}) is not first
    assert backend(first)[1:] == (READER_STATEMENT_TIMEOUT, settings.timezone, "on")


def test_nothing_a_session_set_reaches_the_next_user_of_its_connection(kept, reader, settings):
    engine = kept(make_url(reader), poolclass=NullPool)
    with engine.begin() as conn:  # committed: a session change that a rollback would not undo
        pid = conn.exec_driver_sql("select pg_backend_pid()").scalar()
        for setting in ("statement_timeout = 0", "timezone = 'America/New_York'", "search_path = pg_catalog"):
            conn.exec_driver_sql(f"set {setting}")
        conn.exec_driver_sql("prepare spoiled as select 1")
    with engine.connect() as conn:
        row = conn.exec_driver_sql("select pg_backend_pid(), current_setting('statement_timeout'), "
                                   "current_setting('TimeZone'), current_setting('search_path'), "
                                   "(select count(*) from pg_prepared_statements)").one()
    assert tuple(row) == (pid, READER_STATEMENT_TIMEOUT, settings.timezone, '"$user", public', 0)


def test_a_connection_closed_under_it_is_replaced_not_handed_out(kept, reader, settings):
    engine = kept(make_url(reader), poolclass=NullPool)
    pid = backend(engine)[0]
    owner_query(settings, "select pg_terminate_backend(%s)", pid)  # a restart, or PgBouncer closing it
    assert gone(settings, pid)
    assert backend(engine)[0] != pid


def test_a_new_password_closes_the_old_engine(kept, reader, settings):
    old = kept(make_url(reader), poolclass=NullPool)
    pid = backend(old)[0]
    new = kept(make_url(reader).set(password="rotated"), poolclass=NullPool)
    assert new is not old and len(kept.kept) == 1
    assert gone(settings, pid)


def test_at_most_kept_engines_and_the_oldest_closed(kept, reader, settings):
    made = [kept(make_url(reader), poolclass=NullPool, connect_args={"application_name": f"n{i}"})
            for i in range(engines.KEPT)]
    pid = backend(made[0])[0]
    kept(make_url(reader), poolclass=NullPool, connect_args={"application_name": "one more"})
    assert len(kept.kept) == engines.KEPT
    assert gone(settings, pid)


def test_a_pool_asked_for_is_not_kept(kept, reader):
    assert kept(make_url(reader), poolclass=QueuePool) is not kept(make_url(reader), poolclass=QueuePool)
    assert not kept.kept


def test_a_forked_child_uses_engines_of_its_own_and_leaves_its_parents_open(kept, reader):
    engine = kept(make_url(reader), poolclass=NullPool)
    pid = backend(engine)[0]
    child = os.fork()
    if child == 0:  # the child: a new engine and connection; the parent's never touched
        try:
            os._exit(0 if kept(make_url(reader), poolclass=NullPool) is not engine
                     and backend(kept(make_url(reader), poolclass=NullPool))[0] != pid else 1)
        except BaseException:
            os._exit(2)
    assert os.waitpid(child, 0)[1] == 0
    assert backend(engine)[0] == pid  # the parent's connection is still its own, and alive


def superset_connections(server: str, port: int) -> set[int]:
    """The local ports of the connections Superset's web workers hold to `port`."""
    web = int(server.rsplit(":", 1)[1])
    listening = [psutil.Process(c.pid) for c in psutil.net_connections("tcp")
                 if c.laddr.port == web and c.status == psutil.CONN_LISTEN]  # the master or a worker
    masters = {p.parent() if "gunicorn" in " ".join(p.parent().cmdline()) else p for p in listening}
    workers = {process.pid for master in masters for process in (master, *master.children())}
    return {c.laddr.port for c in psutil.net_connections("tcp")
            if c.pid in workers and c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED}


def test_superset_keeps_its_analytics_connections_between_chart_requests(api, server, settings):
    """Over HTTP: forced chart requests leave Superset's connections open and reuse them
    (Superset's own NullPool closes each one when its query ends)."""
    port = make_url(database_uri(api)).port
    charts = sorted(chart_ids(api).values())
    for chart in charts:
        response = api.get(f"{api.base}/api/v1/chart/{chart}/data/?force=true", timeout=60)
        assert response.status_code == 200, response.text[:300]
    held = superset_connections(server, port)
    assert held, "no connection kept after the charts answered"
    for chart in charts:
        assert api.get(f"{api.base}/api/v1/chart/{chart}/data/?force=true", timeout=60).status_code == 200
    again = superset_connections(server, port)
    assert held & again, (held, again)  # the same connections answered the second round
    assert len(again) <= 4 * engines.POOL_SIZE * 2, again  # workers x databases x idle connections kept
