"""Host resources on System Resources (issue 32): a collector sample equals psutil read in the same
second; the host, Redis and Celery charts through Superset's chart data API equal their reference
SQL on a window of samples that ended before the test looked (the collector of the session's
`serve` writes every 5 s meanwhile); and the dashboard draws them with data in headless Chromium.
test_superset's parametrized chart test compares them too, on their default window."""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

from sparklio_bi import config
from sparklio_bi.postgres import database
from sparklio_bi.quality import reference_host
from sparklio_bi.quality.reference import at_the_charts_now, chart_rows, chart_titles, compare_chart, run_reference
from sparklio_bi.warehouse import collect
from tests.conftest import ADMIN_PASSWORD, api_list, chart_ids, csrf_header, running_redis
from tests.test_superset import assert_dashboard_renders, open_browser

MiB = 2**20
# Memory and disk use move while the test and the collector read them a few milliseconds apart
# (the other test sessions on this machine allocate, free and write): the collector's reading lies
# between the test's before and after readings, give or take this much.
DRIFT_BYTES = 16 * MiB
CPU_SECONDS = 2.0  # the interval the CPU share is compared over


def readings() -> dict:
    """What the collector reads, read by the test with psutil directly."""
    loopback = {name for name, nic in psutil.net_if_stats().items() if "loopback" in nic.flags.split(",")}
    nics = [c for name, c in psutil.net_io_counters(pernic=True).items() if name not in loopback]
    memory, swap = psutil.virtual_memory(), psutil.swap_memory()
    return {"at": datetime.now(timezone.utc), "memory_used": memory.total - memory.available,
            "memory_total": memory.total, "swap_used": swap.used, "swap_total": swap.total,
            "load": psutil.getloadavg(), "received": sum(c.bytes_recv for c in nics),
            "sent": sum(c.bytes_sent for c in nics)}


def mount_of(path: Path) -> str:
    """The mount point holding `path`, from the partition table (not the collector's own walk)."""
    real = os.path.realpath(path)
    mounts = [p.mountpoint for p in psutil.disk_partitions(all=True)
              if real == p.mountpoint or real.startswith(p.mountpoint.rstrip("/") + "/")]
    return max(mounts, key=len)


def between(value: float, before: float, after: float, slack: float = 0.0) -> bool:
    return min(before, after) - slack <= value <= max(before, after) + slack


def test_a_collector_sample_equals_psutil_read_in_the_same_second(seeded_url, settings):
    host = collect.HostSampler()
    host.cpu_ratio()  # the sampler's previous reading; psutil's own interval starts with it
    psutil.cpu_percent(interval=None)
    time.sleep(CPU_SECONDS)
    before, started = readings(), time.monotonic()
    written = collect.collect_once(seeded_url, settings, host)
    psutil_cpu, collect_seconds = psutil.cpu_percent(interval=None) / 100, time.monotonic() - started
    after = readings()
    with database.connect(seeded_url) as conn, conn.cursor() as cur:
        cur.execute("""select sampled_at, metric, dimension, value from analytics.system_samples
                       where sampled_at = (select max(sampled_at) from analytics.system_samples)""")
        rows = cur.fetchall()
        cur.execute("show data_directory")
        pg_data = Path(cur.fetchone()[0])
    assert len(rows) == written
    (sampled_at,) = {r[0] for r in rows}
    sample = {(m, d): v for _, m, d, v in rows}
    assert before["at"] <= sampled_at <= after["at"] and after["at"] - before["at"] < timedelta(seconds=1)

    # The two CPU intervals start microseconds apart and end at most `collect_seconds` apart; in
    # that part any share may differ, and /proc/stat counts whole clock ticks at each end.
    tick = 1 / os.sysconf("SC_CLK_TCK")
    tolerance = (2 * tick + collect_seconds) / CPU_SECONDS
    assert abs(sample[("host_cpu_ratio", "")] - psutil_cpu) <= tolerance, (sample[("host_cpu_ratio", "")], psutil_cpu, tolerance)
    assert sample[("host_cpu_cores", "")] == psutil.cpu_count()
    assert sample[("host_memory_total_bytes", "")] == before["memory_total"]
    assert between(sample[("host_memory_used_bytes", "")], before["memory_used"], after["memory_used"], DRIFT_BYTES)
    assert sample[("host_swap_total_bytes", "")] == before["swap_total"]
    assert between(sample[("host_swap_used_bytes", "")], before["swap_used"], after["swap_used"], DRIFT_BYTES)
    for role, path in (("data_dir", settings.data_dir), ("database", pg_data)):  # the embedded server is local
        usage, mount = psutil.disk_usage(str(path)), mount_of(path)
        assert sample[(f"host_{role}_disk_total_bytes", mount)] == usage.total
        assert abs(sample[(f"host_{role}_disk_used_bytes", mount)] - usage.used) <= DRIFT_BYTES
    for minutes, was, now in zip((1, 5, 15), before["load"], after["load"]):
        assert sample[("host_load_average", f"{minutes} min")] in (was, now)  # the kernel updates it every 5 s
    for direction in ("received", "sent"):  # counters: never behind the first reading, never past the second
        assert before[direction] <= sample[("host_network_bytes", direction)] <= after[direction]


def test_only_the_data_dir_when_the_database_does_not_show_its_data_directory(seeded_url, settings):
    """What cannot be known is not sampled: a role that may not read data_directory (a
    DATABASE_URL server's role without pg_read_all_settings) leaves only the data dir's
    filesystem; the embedded server's owner sees both."""
    with database.connect(seeded_url) as conn, conn.cursor() as cur:
        assert set(collect.disk_paths(cur, settings)) == {"data_dir", "database"}
    with database.connect(seeded_url) as conn, conn.cursor() as cur:
        role = f"plain_{uuid.uuid4().hex[:8]}"  # no pg_read_all_settings; gone with the rollback
        cur.execute(f"create role {role}")
        cur.execute(f"set local role {role}")
        paths = collect.disk_paths(cur, settings)
        conn.rollback()
    assert set(paths) == {"data_dir"}


@pytest.fixture(scope="module")
def finished_window(bootstrapped, server, settings, tmp_path_factory):
    """A window of samples of the session's bundle that ended before any test reads it: Redis with
    three tasks queued sampled twice (serve's collector has no REDIS_URL), then a later sample by
    serve's collector seen (one transaction per sample: everything up to the window's end is in).
    Returns (since, until), whole seconds, one day apart, as the charts' default window is."""
    url = bootstrapped["url"]
    with running_redis(tmp_path_factory.mktemp("host-redis")) as (redis_url, client):
        client.rpush("celery", "task-1", "task-2", "task-3")
        host = collect.HostSampler()
        for _ in range(2):
            collect.collect_once(url, replace(settings, redis_url=redis_url), host)
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select date_trunc('second', max(sampled_at)) + interval '1 second' from analytics.system_samples")
        until = cur.fetchone()[0]
    deadline = time.monotonic() + 120
    while True:
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select count(*) from analytics.system_samples where sampled_at > %s", (until,))
            if cur.fetchone()[0]:
                break
        assert time.monotonic() < deadline, "serve's collector wrote no sample within 120 s"
        time.sleep(1)
    return until - timedelta(days=1), until


def on_window(context: dict, since: datetime, until: datetime) -> dict:
    """The chart's saved query context with its time range set to [since, until)."""
    span = f"{since:%Y-%m-%dT%H:%M:%S} : {until:%Y-%m-%dT%H:%M:%S}"
    for query in context["queries"]:
        for flt in query["filters"]:
            if flt["op"] == "TEMPORAL_RANGE":
                flt["val"] = span
    for flt in context["form_data"]["adhoc_filters"]:
        if flt["operator"] == "TEMPORAL_RANGE":
            flt["comparator"] = span
    return dict(context, force=True)


@pytest.mark.parametrize("chart", reference_host.CHARTS, ids=lambda c: f"{c.key} {c.title}")
def test_chart_equals_its_reference_on_a_finished_window(api, bootstrapped, finished_window, chart):
    since, until = finished_window
    chart_id = chart_ids(api)[chart_titles()[chart.key]]
    saved = api.get(f"{api.base}/api/v1/chart/{chart_id}", timeout=30).json()["result"]
    context = on_window(json.loads(saved["query_context"]), since, until)
    response = api.post(f"{api.base}/api/v1/chart/data", json=context, headers=csrf_header(api), timeout=60)
    assert response.status_code == 200, response.text[:500]
    payload = response.json()
    shown = chart_rows(payload)
    assert shown and any(v is not None for row in shown for v in row[1:]), f"{chart.key} shows no value"
    sql = at_the_charts_now(chart.reference, payload)
    assert f"'{until:%Y-%m-%d %H:%M:%S}" in sql, "the reference did not take the window's end"
    compare_chart(chart, run_reference(bootstrapped["url"], sql), payload, bootstrapped["url"])
    if chart.key == "5.12":  # the three tasks queued, at the minute they were sampled in
        assert 3 in [row[1] for row in shown]


def test_system_resources_draws_the_host_redis_and_celery_charts_with_data(api, server, finished_window):
    from selenium.webdriver.common.by import By

    (dashboard,) = [d for d in api_list(api, "dashboard") if d["dashboard_title"] == "System Resources"]
    browser = open_browser(server, "admin", ADMIN_PASSWORD, profile="chromium-host-resources")
    try:
        assert_dashboard_renders(browser, api, dashboard, screenshot_suffix="-host")  # every chart drawn, no error
        titles = chart_titles()
        for chart in reference_host.CHARTS:
            title = titles[chart.key]
            holders = browser.find_elements(
                By.XPATH, f'//*[@data-test="dashboard-component-chart-holder"][.//*[normalize-space(text())="{title}"]]')
            assert holders, f"no chart titled {title!r} on the dashboard"
            assert holders[0].find_elements(By.CSS_SELECTOR, "canvas, svg"), f"{title}: nothing drawn"
            assert "No results" not in holders[0].text, f"{title}: no data"
    finally:
        browser.quit()


def test_the_host_charts_default_window_is_the_references():
    """The charts' saved default range is the one their reference SQL writes (WINDOW)."""
    import yaml

    for key, file in reference_host.CHART_FILES.items():
        params = yaml.safe_load((config.PROJECT_ROOT / "assets" / "charts" / f"{file}.yaml").read_text())["params"]
        (time_range,) = [f["comparator"] for f in params["adhoc_filters"] if f["operator"] == "TEMPORAL_RANGE"]
        assert time_range == 'DATEADD(DATETRUNC(DATETIME("now"), second), -1, day) : DATETRUNC(DATETIME("now"), second)', key
        assert reference_host.WINDOW in next(c for c in reference_host.CHARTS if c.key == key).reference, key
