"""System samples for dashboard 5: PostgreSQL connections and sizes, this host's CPU, memory,
disk, load and network (psutil), and Redis and Celery figures when REDIS_URL is set, appended to
the bundle's analytics.system_samples table (the metrics are listed in sql/views/system_metrics__v2.sql)."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

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

# The server's data directory, when this host can see it: a server on a Unix socket or loopback
# (pg_settings hides the row from a role without pg_read_all_settings: then it is not known)
DATA_DIRECTORY = """
select setting from pg_settings
where name = 'data_directory' and (inet_server_addr() is null or inet_server_addr() <<= '127.0.0.0/8'
                                   or inet_server_addr() = '::1')
"""
FIRST_CPU_SECONDS = 0.5  # the CPU share of a sampler's first reading is over this long; then since the last


def postgres_samples(cur, settings: config.Settings) -> list[tuple[str, str, float]]:
    cur.execute(POSTGRES_SAMPLES, {"source": settings.source_schema})
    return cur.fetchall()


class HostSampler:
    """This host's readings (psutil). The CPU share is of all cores, busy as psutil.cpu_percent
    counts it, over the time since this sampler's previous reading: a minute's samples cover the
    whole minute, not an instant of it."""

    def __init__(self) -> None:
        self._cpu_times = None

    def cpu_ratio(self) -> float:
        import psutil

        if self._cpu_times is None:
            self._cpu_times = psutil.cpu_times()
            time.sleep(FIRST_CPU_SECONDS)
        before, self._cpu_times = self._cpu_times, psutil.cpu_times()
        total = _cpu_total(self._cpu_times) - _cpu_total(before)
        busy = total - (_cpu_idle(self._cpu_times) - _cpu_idle(before))
        return min(1.0, max(0.0, busy / total)) if total > 0 else 0.0

    def samples(self, disks: dict[str, Path]) -> list[tuple[str, str, float]]:
        """Every host metric; `disks`: the filesystem roles sampled ("data_dir", "database") -> a
        path on that filesystem (the dimension is its mount point)."""
        import psutil

        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        rows = [("host_cpu_ratio", "", self.cpu_ratio()),
                ("host_cpu_cores", "", float(psutil.cpu_count() or 1)),
                ("host_memory_used_bytes", "", float(memory.total - memory.available)),
                ("host_memory_total_bytes", "", float(memory.total)),
                ("host_swap_used_bytes", "", float(swap.used)),
                ("host_swap_total_bytes", "", float(swap.total))]
        for role, path in disks.items():
            usage, mount = psutil.disk_usage(str(path)), mount_point(path)
            rows += [(f"host_{role}_disk_used_bytes", mount, float(usage.used)),
                     (f"host_{role}_disk_total_bytes", mount, float(usage.total))]
        rows += [("host_load_average", f"{minutes} min", load)
                 for minutes, load in zip((1, 5, 15), os.getloadavg())]
        loopback = {name for name, nic in psutil.net_if_stats().items() if "loopback" in nic.flags.split(",")}
        nics = [c for name, c in psutil.net_io_counters(pernic=True).items() if name not in loopback]
        rows += [("host_network_bytes", "received", float(sum(c.bytes_recv for c in nics))),
                 ("host_network_bytes", "sent", float(sum(c.bytes_sent for c in nics)))]
        return rows


def _cpu_total(times) -> float:
    return sum(times) - getattr(times, "guest", 0) - getattr(times, "guest_nice", 0)  # guest: in user already


def _cpu_idle(times) -> float:
    return times.idle + getattr(times, "iowait", 0)


def mount_point(path: Path) -> str:
    """The mount point of the filesystem holding `path`."""
    path = Path(os.path.realpath(path))
    while not os.path.ismount(path):
        path = path.parent
    return str(path)


def disk_paths(cur, settings: config.Settings) -> dict[str, Path]:
    """The filesystems to sample: the bundle's data dir, and the database's data directory when
    it is on this host."""
    cur.execute(DATA_DIRECTORY)
    found = cur.fetchone()
    paths = {"data_dir": settings.data_dir}
    if found and found[0] and Path(found[0]).is_dir():
        paths["database"] = Path(found[0])
    return {role: path for role, path in paths.items() if path.exists()}


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


def collect_once(url: str, settings: config.Settings, host: HostSampler | None = None) -> int:
    """Take one sample of every metric in one transaction; returns the number of rows written.
    The time is taken once every reading is done, just before they are written: a sample is
    visible (committed) within milliseconds of its time."""
    from psycopg2.extras import execute_values

    rows = redis_samples(settings.redis_url) if settings.redis_url else []
    with database.connect(url) as conn, conn.cursor() as cur:
        rows = postgres_samples(cur, settings) + rows
        rows += (host or HostSampler()).samples(disk_paths(cur, settings))
        now = datetime.now(timezone.utc)
        execute_values(cur, f"insert into {settings.analytics_schema}.system_samples (sampled_at, metric, dimension, value) "
                       "values %s", [(now, metric, dimension, value) for metric, dimension, value in rows])
    return len(rows)


def collect_forever(url: str, settings: config.Settings, interval: float,
                    on_sample: Callable[[int], None] = lambda n: None,
                    on_error: Callable[[str], None] = lambda line: None) -> None:
    """Sample every `interval` seconds until interrupted; a round that fails (the database or
    Redis down) is reported and the next one tried, so an outage leaves a gap, not a dead sampler."""
    import psycopg2

    host = HostSampler()
    try:
        while True:
            started = time.monotonic()
            try:
                on_sample(collect_once(url, settings, host))
            except (database.DatabaseError, psycopg2.Error) as exc:
                on_error(f"sampling failed, trying again in {interval:g}s: {' '.join(str(exc).split())}")
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
