"""Issue 16: Superset's audit trail (its `logs` table) kept, but written in batches off the request
path (superset/event_log.py, set as EVENT_LOGGER): N chart requests give N audit rows once the
batch is written; a SIGTERM to serve writes what waits, losing none."""
from __future__ import annotations

import signal
import time

from sparklio_bi.postgres import database
from sparklio_bi.superset.rest import TokenSession
from tests.conftest import ADMIN_PASSWORD, chart_ids, start_server

ACTION = "ChartDataRestApi.data"  # what Superset logs for each chart data request (the chart id in its json)


def audit_rows(settings, chart_id: int) -> int:
    with database.connect(database.superset_metadata_url(settings)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from logs where action = %s and (json::jsonb ->> 'pk')::int = %s",
                    (ACTION, chart_id))
        return cur.fetchone()[0]


def ask(session, chart_id: int, times: int) -> None:
    for _ in range(times):
        response = session.get(f"{session.base}/api/v1/chart/{chart_id}/data/?force=true", timeout=60)
        assert response.status_code == 200, response.text[:300]


def test_every_chart_request_is_in_the_audit_log_once_the_batch_is_written(api, settings):
    chart_id = chart_ids(api)["Daily workflow runs"]
    before = audit_rows(settings, chart_id)
    ask(api, chart_id, 7)
    deadline = time.monotonic() + 20  # written every 2 s by each web process
    while audit_rows(settings, chart_id) < before + 7 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert audit_rows(settings, chart_id) == before + 7


def test_a_sigterm_to_serve_writes_the_rows_still_waiting(api, settings, monkeypatch):
    chart_id = chart_ids(api)["Executions per agent"]
    monkeypatch.setenv("SUPERSET_AUDIT_FLUSH_SECONDS", "3600")  # nothing written but at exit
    proc, base = start_server("--collect-interval", "0", "--workers", "1", log_name="audit-log-server.log")
    try:
        before = audit_rows(settings, chart_id)
        ask(TokenSession(base, "admin", ADMIN_PASSWORD), chart_id, 5)
        time.sleep(1)
        assert audit_rows(settings, chart_id) == before, "written on the request path, not in a batch"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert audit_rows(settings, chart_id) == before + 5
