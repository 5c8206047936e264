"""The bundle's own charts beyond the spec: host resources, Redis and Celery on dashboard 5, System Resources (issue 32).
Each has its reference SQL, written in the spec's style, on the raw tables the bundle owns
(analytics.system_samples, written by `sparklio-bi collect`); docs/spec/system-resources-host.md is their spec.

Their window is the last day up to the last whole second before now (the charts' default,
`DATEADD(DATETRUNC(DATETIME("now"), second), -1, day) : DATETRUNC(DATETIME("now"), second)`): the
collector keeps writing while a chart and its reference are read, and a sample is committed
milliseconds after its time, so a sample inside the window is already visible to whichever reads
it first unless both the chart's query and the sample land within those milliseconds of a second
boundary. tests/test_host_resources.py also compares each on a window that had ended, with a later
sample committed, before it read them."""
from __future__ import annotations

from sparklio_bi.quality.chart_spec import Chart

DASHBOARDS: dict[str, str] = {}  # a new dashboard's number -> its title in assets/

# the samples' window, as the charts' default time range has it
WINDOW = "sampled_at >= date_trunc('second', now()) - interval '1 day' and sampled_at < date_trunc('second', now())"


def _share(used: str, total: str) -> str:
    return (f"sum(value) filter (where metric = '{used}') / nullif(sum(value) filter (where metric = '{total}'), 0)")


def _minutes(columns: str, metrics: tuple[str, ...], table: str = "analytics.system_samples") -> str:
    names = ", ".join(f"'{m}'" for m in metrics)
    return f"""select date_trunc('minute', sampled_at) as minute, {columns}
               from {table} where metric in ({names}) and {WINDOW}
               group by 1 order by 1"""


MEMORY = ("host_memory_used_bytes", "host_memory_total_bytes", "host_swap_used_bytes", "host_swap_total_bytes")
DISK = ("host_data_dir_disk_used_bytes", "host_data_dir_disk_total_bytes",
        "host_database_disk_used_bytes", "host_database_disk_total_bytes")
LOAD = ", ".join(f"avg(value) filter (where metric = 'host_load_average' and dimension = '{m} min') as load_{m}m"
                 for m in (1, 5, 15)) + ", max(value) filter (where metric = 'host_cpu_cores') as cores"
# the counters' increase per second between consecutive samples; a counter that went back (a
# reboot) gives no rate for that interval
NETWORK = f"""select date_trunc('minute', sampled_at) as minute,
                     avg(per_second) filter (where dimension = 'received') as received,
                     avg(per_second) filter (where dimension = 'sent') as sent
              from (select sampled_at, dimension,
                           (value - lag(value) over w) / extract(epoch from sampled_at - lag(sampled_at) over w)
                               as per_second
                    from analytics.system_samples where metric = 'host_network_bytes'
                    window w as (partition by dimension order by sampled_at)) as rates
              where per_second >= 0 and {WINDOW}
              group by 1 order by 1"""

CHARTS: list[Chart] = [
    Chart("5.5", "CPU use (share of all cores)", "series",
          _minutes("avg(value) as cpu", ("host_cpu_ratio",)),
          _minutes("avg(value)", ("host_cpu_ratio",), "analytics.system_metrics")),
    Chart("5.6", "Memory and swap used (share of total)", "series",
          _minutes(f"{_share(*MEMORY[:2])} as memory, {_share(*MEMORY[2:])} as swap", MEMORY),
          _minutes(f"{_share(*MEMORY[:2])}, {_share(*MEMORY[2:])}", MEMORY, "analytics.system_metrics")),
    Chart("5.7", "Disk used (share of the filesystem)", "series",
          _minutes(f"{_share(*DISK[:2])} as data_dir, {_share(*DISK[2:])} as database", DISK),
          _minutes(f"{_share(*DISK[:2])}, {_share(*DISK[2:])}", DISK, "analytics.system_metrics")),
    Chart("5.8", "Load average (and CPU cores)", "series",
          _minutes(LOAD, ("host_load_average", "host_cpu_cores")),
          _minutes(LOAD, ("host_load_average", "host_cpu_cores"), "analytics.system_metrics")),
    Chart("5.9", "Network in and out (bytes per second)", "series", NETWORK,
          f"""select date_trunc('minute', sampled_at), avg(per_second) filter (where dimension = 'received'),
                     avg(per_second) filter (where dimension = 'sent')
              from analytics.system_rates where metric = 'host_network_bytes' and {WINDOW}
              group by 1 order by 1""",
          fix="the samples are cumulative counters; the chart shows their increase per second (view system_rates)"),
    Chart("5.10", "Redis memory used", "series",
          _minutes("max(value) as used_memory", ("redis_used_memory_bytes",)),
          _minutes("max(value)", ("redis_used_memory_bytes",), "analytics.system_metrics")),
    Chart("5.11", "Redis connected clients", "series",
          _minutes("max(value) as clients", ("redis_connected_clients",)),
          _minutes("max(value)", ("redis_connected_clients",), "analytics.system_metrics")),
    Chart("5.12", "Celery queue length (longest queue)", "series",
          _minutes("max(value) as queue_length", ("celery_queue_length",)),
          _minutes("max(value)", ("celery_queue_length",), "analytics.system_metrics")),
]

CHART_FILES: dict[str, str] = {  # key -> assets/charts/<file>.yaml
    "5.5": "CPU_use_share_of_all_cores", "5.6": "Memory_and_swap_used_share_of_total", "5.7": "Disk_used_share_of_the_filesystem",
    "5.8": "Load_average_and_CPU_cores", "5.9": "Network_in_and_out_bytes_per_second", "5.10": "Redis_memory_used",
    "5.11": "Redis_connected_clients", "5.12": "Celery_queue_length_longest_queue",
}
