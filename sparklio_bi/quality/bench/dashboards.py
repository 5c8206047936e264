"""Per dashboard: its requests fired at once, as a browser does, and its render in Chromium."""
from __future__ import annotations

import concurrent.futures
import json
import tempfile
import threading
import time
from pathlib import Path

import requests

from sparklio_bi.quality.bench.harness import BenchError, Progress
from sparklio_bi.quality.bench.stats import stats, timed
from sparklio_bi.superset.rest import clone, csrf_headers, get, listing, post

BROWSER_CONNECTIONS = 6  # what Chromium opens at most to one host over HTTP/1.1
FILTER_ROW_LIMIT = 1000  # Superset's NATIVE_FILTER_DEFAULT_ROW_LIMIT


def filter_options_query(dataset_id: int, column: str) -> dict:
    """What the filter bar posts for a native select filter's options (Superset 6.1's
    filters/components/Select/buildQuery: the column grouped, no metric, sorted ascending)."""
    form_data = {"datasource": f"{dataset_id}__table", "viz_type": "filter_select", "groupby": [column],
                 "metrics": [], "row_limit": FILTER_ROW_LIMIT, "sortAscending": True, "time_range": "No filter",
                 "adhoc_filters": [], "extra_form_data": {}}
    return {"datasource": {"id": dataset_id, "type": "table"}, "force": True, "form_data": form_data,
            "result_format": "json", "result_type": "full",
            "queries": [{"columns": [column], "metrics": [], "orderby": [[column, True]], "filters": [],
                         "extras": {"having": "", "where": ""}, "applied_time_extras": {},
                         "row_limit": FILTER_ROW_LIMIT, "series_limit": 0, "order_desc": True,
                         "url_params": {}, "custom_params": {}, "custom_form_data": {},
                         "time_range": "No filter"}]}


def dashboard_requests(base: str, session: requests.Session, dashboard: dict) -> tuple[list[int], list[dict]]:
    """A dashboard's chart ids and its select filters' option queries."""
    charts = get(session, f"{base}/api/v1/dashboard/{dashboard['id']}/charts").json()["result"]
    detail = get(session, f"{base}/api/v1/dashboard/{dashboard['id']}").json()["result"]
    metadata = json.loads(detail.get("json_metadata") or "{}")
    filters = []
    for native in metadata.get("native_filter_configuration", []):
        if native.get("filterType") != "filter_select":
            continue
        for target in native.get("targets", []):
            if "datasetId" not in target:
                raise BenchError(f"{dashboard['dashboard_title']}: filter {native.get('name')} has no datasetId")
            filters.append(filter_options_query(int(target["datasetId"]), target["column"]["name"]))
    return [c["id"] for c in charts], filters


def measure_dashboards(base: str, session: requests.Session, runs: int,
                       progress: Progress = lambda line: None) -> list[dict]:
    """Each dashboard's chart data (forced) and filter options, fired from a pool of
    BROWSER_CONNECTIONS threads as a browser does: time until the last one answers."""
    headers = csrf_headers(base, session)
    out = []
    dashboards = sorted(listing(base, session, "dashboard"), key=lambda d: d["dashboard_title"])
    local, sessions = threading.local(), []

    def send(job) -> None:
        if not hasattr(local, "session"):  # one connection per thread, as a browser's 6 per host
            local.session = clone(session, headers)
            sessions.append(local.session)
        worker = local.session
        if isinstance(job, int):
            get(worker, f"{base}/api/v1/chart/{job}/data/?force=true")
        else:
            post(worker, f"{base}/api/v1/chart/data", job, {})

    with concurrent.futures.ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool:

        for dashboard in dashboards:
            chart_ids, filters = dashboard_requests(base, session, dashboard)
            jobs = [*chart_ids, *filters]

            def fire(jobs=jobs):
                futures = [pool.submit(send, job) for job in jobs]
                for future in futures:
                    future.result()
            concurrent_ms, _ = timed(fire, runs)
            out.append({"id": dashboard["id"], "title": dashboard["dashboard_title"], "charts": len(chart_ids),
                        "filters": len(filters), "requests": len(jobs), "concurrent_ms": concurrent_ms,
                        "render_ms": None, "render_warm_browser_ms": None})
            progress(f"dashboard {dashboard['dashboard_title'][:30]:<30} {len(chart_ids)} charts + "
                     f"{len(filters)} filters concurrently: p50 {concurrent_ms['p50']:.0f} ms")
        for worker in sessions:
            worker.close()
    return out


# From the page's Resource Timing (ms after navigation start): when the dashboard's JavaScript sent
# its first chart data request, and when the last one's answer arrived; the rest is drawing.
PHASES_SCRIPT = """
const data = performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/chart/data'));
if (!data.length) { return {}; }
return {first_data_request: Math.min(...data.map(e => e.startTime)),
        last_data: Math.max(...data.map(e => e.responseEnd))};
"""


def measure_renders(base: str, session_cookie: str, dashboards: list[dict], runs: int,
                    progress: Progress = lambda line: None) -> None:
    """Each dashboard's cold render: a fresh Chromium profile per run (nothing cached in the
    browser), the dashboard opened with ?force=true (Superset's data cache bypassed); from
    driver.get to every chart drawn. Then, for comparison, the same page again in the same
    browser (its HTTP cache warm, the data still forced). One warm-up render of the first
    dashboard in all. Fills each dashboard's render_ms and render_warm_browser_ms."""
    from sparklio_bi.quality import browser

    def render(dashboard: dict) -> tuple[float, float, dict]:
        url = f"{base}/superset/dashboard/{dashboard['id']}/?force=true"
        with tempfile.TemporaryDirectory(prefix="sparklio-bench-chromium-") as profile:
            driver = browser.open_browser(base, session_cookie, Path(profile))
            try:
                times = []
                for _ in range(2):
                    started = time.perf_counter()
                    driver.get(url)
                    browser.wait_for_charts(driver, dashboard["charts"], timeout=120, poll=0.25)
                    times.append((time.perf_counter() - started) * 1000)
                return times[0], times[1], driver.execute_script(PHASES_SCRIPT)
            finally:
                driver.quit()

    if dashboards:
        render(dashboards[0])
    for dashboard in dashboards:
        cold, warm, phases = zip(*[render(dashboard) for _ in range(runs)])
        dashboard["render_ms"], dashboard["render_warm_browser_ms"] = stats(list(cold)), stats(list(warm))
        dashboard["render_warm_browser_phases_ms"] = {
            key: stats([p[key] for p in phases if p.get(key) is not None]) for key in ("first_data_request", "last_data")
            if any(p.get(key) is not None for p in phases)}
        split = dashboard["render_warm_browser_phases_ms"]
        progress(f"render {dashboard['title'][:30]:<30} cold p50 {dashboard['render_ms']['p50']:.0f} ms, "
                 f"browser cache warm p50 {dashboard['render_warm_browser_ms']['p50']:.0f} ms (first data request "
                 f"at {split.get('first_data_request', {}).get('p50', 0):.0f} ms, last data at "
                 f"{split.get('last_data', {}).get('p50', 0):.0f} ms)")
