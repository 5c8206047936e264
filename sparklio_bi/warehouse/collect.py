"""System samples for dashboard 5: PostgreSQL connections and sizes, and Redis and Celery
figures when REDIS_URL is set, appended to the bundle's analytics.system_samples table."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from sparklio_bi import config
from sparklio_bi.postgres import database

CELERY_QUEUES = ("celery",)

POSTGRES_SAMPLES = """
select 'pg_connections', coalesce(nullif(state, ''), backend_type), count(*)::float8
from pg_stat_activity group by 2
union all
select 'pg_database_bytes', current_database(), pg_database_size(current_database())::float8
union all
select 'pg_table_bytes', tablename, pg_total_relation_size(format('%%I.%%I', schemaname, tablename))::float8
from pg_tables where schemaname = %(source)s
"""


def postgres_samples(cur, settings: config.Settings) -> list[tuple[str, str, float]]:
    cur.execute(POSTGRES_SAMPLES, {"source": settings.source_schema})
    return cur.fetchall()


def redis_samples(redis_url: str) -> list[tuple[str, str, float]]:
    """Memory, clients and Celery queue lengths; a Redis that cannot be reached is an error."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        info = client.info()
        rows = [("redis_used_memory_bytes", "", float(info["used_memory"])),
                ("redis_connected_clients", "", float(info["connected_clients"]))]
        rows += [("celery_queue_length", queue, float(client.llen(queue))) for queue in CELERY_QUEUES]
    except redis.RedisError as exc:
        raise database.DatabaseError(f"cannot sample Redis at REDIS_URL: {exc}") from None
    return rows


def collect_once(url: str, settings: config.Settings) -> int:
    """Take one sample of every metric; returns the number of rows written."""
    now = datetime.now(timezone.utc)
    rows = redis_samples(settings.redis_url) if settings.redis_url else []
    with database.connect(url) as conn, conn.cursor() as cur:
        rows = postgres_samples(cur, settings) + rows
        cur.executemany(
            f"insert into {settings.analytics_schema}.system_samples (sampled_at, metric, dimension, value) "
            "values (%s, %s, %s, %s)",
            [(now, metric, dimension, value) for metric, dimension, value in rows])
    return len(rows)


def collect_forever(url: str, settings: config.Settings, interval: float,
                    on_sample: Callable[[int], None] = lambda n: None,
                    on_error: Callable[[str], None] = lambda line: None) -> None:
    """Sample every `interval` seconds until interrupted; a round that fails (the database or
    Redis down) is reported and the next one tried, so an outage leaves a gap, not a dead sampler."""
    import psycopg2

    try:
        while True:
            started = time.monotonic()
            try:
                on_sample(collect_once(url, settings))
            except (database.DatabaseError, psycopg2.Error) as exc:
                on_error(f"sampling failed, trying again in {interval:g}s: {' '.join(str(exc).split())}")
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
