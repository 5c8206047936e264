"""System samples for dashboard 5, with a real Redis server when REDIS_URL is set."""
import os

import pytest

from sparklio_bi import config
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import collect
from tests.conftest import free_port, running_redis
from tests.test_cli import assert_one_line_error, run_cli


def latest(url):
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("""select metric, dimension, value from analytics.system_metrics
                       where sampled_at = (select max(sampled_at) from analytics.system_metrics)""")
        return {(m, d): v for m, d, v in cur.fetchall()}


def test_postgres_samples(seeded_url):
    written = collect.collect_once(seeded_url, config.load())
    sample = latest(seeded_url)
    assert written == len(sample)
    assert sum(v for (m, _), v in sample.items() if m == "pg_connections") >= 1
    assert ("pg_connections", "active") in sample  # this very query
    with database.connect(seeded_url) as conn, conn.cursor() as cur:
        cur.execute("select pg_database_size(current_database())")
        size = cur.fetchone()[0]
    db_sizes = [v for (m, _), v in sample.items() if m == "pg_database_bytes"]
    assert len(db_sizes) == 1 and abs(db_sizes[0] - size) < 0.01 * size
    tables = {d for (m, d) in sample if m == "pg_table_bytes"}
    assert tables == {"users", "brands", "projects", "workflows", "agent_logs", "router_logs", "assets"}


@pytest.fixture()
def redis_server(tmp_path):
    with running_redis(tmp_path) as started:
        yield started


def test_redis_and_celery_samples(seeded_url, redis_server, monkeypatch):
    url, client = redis_server
    client.rpush("celery", "task-1", "task-2", "task-3")
    monkeypatch.setenv("REDIS_URL", url)
    collect.collect_once(seeded_url, config.load())
    sample = latest(seeded_url)
    assert sample[("celery_queue_length", "celery")] == 3
    assert sample[("redis_connected_clients", "")] >= 1
    assert sample[("redis_used_memory_bytes", "")] > 0


def test_unreachable_redis_is_one_line_and_writes_nothing(seeded_url):
    before = latest(seeded_url)
    env = dict(os.environ, DATABASE_URL=seeded_url, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert_one_line_error(run_cli("collect", "--once", env=env), "Redis")
    assert latest(seeded_url) == before
