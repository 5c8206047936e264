"""Issue 17, its first part: with REDIS_URL, `serve` runs Superset's Celery worker and beat beside
gunicorn (supervised like its other children), on Superset's own Celery settings, so its
Alerts & Reports scheduler runs every minute; without Redis they are off. The alerts and
reports themselves (alerts/ as code, email, webhook, Slack) are the rest of issue 17."""
from __future__ import annotations

import os
import time

import psutil
import pytest
from celery import Celery

from tests.conftest import ADMIN_PASSWORD, TokenSession, running_redis, start_server
from tests.test_doctor import doctor


@pytest.fixture(scope="module")
def served(bootstrapped, tmp_path_factory):
    """A serve of the test install with a Redis of its own: (serve process, base URL, Redis URL, client)."""
    with running_redis(tmp_path_factory.mktemp("celery-redis")) as (url, client):
        proc, base = start_server("--collect-interval", "0", log_name="celery-serve.log", env=dict(os.environ, REDIS_URL=url))
        try:
            yield proc, base, url, client
        finally:
            proc.terminate()
            proc.wait(60)


def commands(proc) -> list[str]:
    return [" ".join(child.cmdline()) for child in psutil.Process(proc.pid).children(recursive=True)]


@pytest.mark.slow  # up to 75 s: beat sends reports.scheduler at each minute's start
def test_serve_runs_the_worker_and_beat_and_the_scheduler_reaches_the_worker(served, settings):
    proc, _, url, client = served
    running = commands(proc)
    assert any("superset.tasks.celery_app:app worker" in c for c in running), running
    assert any("superset.tasks.celery_app:app beat" in c for c in running), running
    deadline = time.monotonic() + 60
    while not Celery(broker=url).control.ping(timeout=2):
        assert time.monotonic() < deadline, "no Celery worker answered a ping within 60 s"
    deadline = time.monotonic() + 75
    while not client.keys("celery-task-meta-*"):  # a task the worker ran: beat's reports.scheduler
        assert time.monotonic() < deadline, "no task result in Redis within 75 s (beat every minute)"
        time.sleep(2)
    assert list(settings.data_dir.glob("celerybeat-schedule*")), "beat kept no schedule in the data dir"


def test_alerts_and_reports_are_on_with_redis_and_off_without(served, api):
    _, base, url, _ = served
    code, lines = doctor(base, dict(os.environ, REDIS_URL=url))
    assert lines["alerts"].startswith("ok") and "worker and beat run" in lines["alerts"], lines["alerts"]
    assert TokenSession(base, "admin", ADMIN_PASSWORD).get(f"{base}/api/v1/report/", timeout=30).status_code == 200
    assert api.get(f"{api.base}/api/v1/report/", timeout=30).status_code == 404  # the session's serve: no Redis


def test_a_stopped_serve_stops_the_worker_and_beat(served):
    """The last of this module: it stops the module's serve."""
    proc = served[0]
    children = psutil.Process(proc.pid).children(recursive=True)
    assert sum("celery" in " ".join(c.cmdline()) for c in children) >= 3  # worker, its pool, beat
    proc.terminate()
    proc.wait(60)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]
