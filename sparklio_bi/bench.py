"""`sparklio-bi bench`: how fast the 29 charts and 8 dashboards answer, at a given scale.

Two layers:

- `measure(base_url, session, owner_url, reader_url, runs)` measures a Superset that already
  serves the bundle (the tests call it on their session's server): per chart (a) its reference
  SQL on the source tables as the owner, (b) the SQL Superset generates for it, run directly as
  the reader role, (c) the chart data API with the cache bypassed and (d) cached; per dashboard
  all its charts' data and its select filters' options fired concurrently, as a browser does,
  and optionally (`render`) its cold render in headless Chromium.
- `run(...)` (the CLI) wraps a whole bundle of its own around that: its own data dir and
  embedded PostgreSQL on a free port, `sparklio-bi bootstrap`, `sparklio-bi serve`, all as
  subprocesses of the CLI with a copied environment, so the user's database and .data/ are
  never touched. It writes results.json and a Markdown summary.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from . import database, datadir, reference
from .config import PROJECT_ROOT
from .errors import BundleError

DEFAULT_DIR = PROJECT_ROOT / ".data-bench"
DEFAULT_OUTPUT = PROJECT_ROOT / "benchmarks" / "results.json"
MARKDOWN_NAME = "RESULTS-dashboards.md"
CLI = [sys.executable, "-m", "sparklio_bi.cli"]
BROWSER_CONNECTIONS = 6  # what Chromium opens at most to one host over HTTP/1.1
FILTER_ROW_LIMIT = 1000  # Superset's NATIVE_FILTER_DEFAULT_ROW_LIMIT
# Variables of the user's install that must not reach the bench's children.
UNSET = ("DATABASE_URL", "SUPERSET_DATABASE_URL", "REDIS_URL", "SPARKLIO_PG_PASSWORD", "SPARKLIO_READER_PASSWORD",
         "SUPERSET_ADMIN_PASSWORD", "SUPERSET_ADMIN_USERNAME", "SUPERSET_SECRET_KEY", "PREVIOUS_SECRET_KEY",
         "ANALYTICS_SCHEMA", "SOURCE_SCHEMA", "SPARKLIO_PG_DATABASE", "SPARKLIO_READER_ROLE",
         "SUPERSET_HOST", "SUPERSET_PORT", "SPARKLIO_REFRESH_SECONDS")
TARGETS = {  # name -> (description, limit)
    "query_p95": ("every chart's generated SQL (b), p95 <= 50 ms", 50.0),
    "api_forced_p95": ("every chart's data API, cache bypassed (c), p95 <= 200 ms", 200.0),
    "dashboard_concurrent_p95": ("every dashboard's requests fired concurrently, p95 <= 1000 ms", 1000.0),
    "render": ("every dashboard's cold render in Chromium (fresh profile, data forced), p95 <= 4000 ms", 4000.0),
    "render_warm_browser": ("every dashboard's render with the browser's HTTP cache warm (data forced), "
                            "p95 <= 4000 ms", 4000.0),
    "speedup_query": ("sum of reference p50 (a) / sum of generated SQL p50 (b) >= 20", 20.0),
    "speedup": ("sum of reference p50 (a) / sum of API forced p50 (c) >= 20", 20.0),
}

Progress = Callable[[str], None]


class BenchError(BundleError):
    """An expected failure (a port taken, bootstrap failed): one line for the user."""


# --- figures ----------------------------------------------------------------------------------

def stats(samples_ms: list[float]) -> dict:
    """p50, p95 (linear interpolation between ranks) and max of some times, in ms."""
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        k = (len(ordered) - 1) * p
        low, high = int(k), min(int(k) + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (k - low)

    return {"p50": round(pct(0.5), 2), "p95": round(pct(0.95), 2), "max": round(ordered[-1], 2),
            "runs": len(ordered)}


def timed(fn: Callable[[], object], runs: int, warmups: int = 1) -> tuple[dict, object]:
    """Call fn `warmups` times untimed, then `runs` times timed: (stats in ms, last result)."""
    result = None
    for _ in range(warmups):
        result = fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return stats(samples), result


# --- talking to Superset ----------------------------------------------------------------------

def _get(session: requests.Session, url: str, **kwargs) -> requests.Response:
    response = session.get(url, timeout=kwargs.pop("timeout", 120), **kwargs)
    if response.status_code != 200:
        raise BenchError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return response


def _post(session: requests.Session, url: str, body: dict, headers: dict) -> requests.Response:
    response = session.post(url, json=body, headers=headers, timeout=120)
    if response.status_code != 200:
        raise BenchError(f"POST {url}: {response.status_code} {response.text[:300]}")
    return response


def csrf_headers(base: str, session: requests.Session) -> dict:
    """The CSRF header Superset wants on posts (a form login already has it in its headers)."""
    if "X-CSRFToken" in session.headers:
        return {}
    token = _get(session, f"{base}/api/v1/security/csrf_token/").json()["result"]
    return {"X-CSRFToken": token, "Referer": base}


def listing(base: str, session: requests.Session, kind: str) -> list[dict]:
    return _get(session, f"{base}/api/v1/{kind}/?q=(page_size:100)").json()["result"]


def _clone(session: requests.Session, extra_headers: dict) -> requests.Session:
    """A session of its own for a worker thread, with the same login."""
    clone = requests.Session()
    clone.headers.update(session.headers)
    clone.headers.update(extra_headers)
    clone.cookies.update(session.cookies)
    return clone


# --- per chart --------------------------------------------------------------------------------

def _sql_timer(url: str, sql: str, search_path: str | None = None) -> Iterator:
    """A connection kept open, and a function that runs `sql` on it and fetches every row."""
    @contextlib.contextmanager
    def opened():
        with database.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            if search_path:
                cur.execute(f"set search_path = {search_path}")

            def run():
                for statement in ([sql] if isinstance(sql, str) else sql):
                    cur.execute(statement)
                    rows = cur.fetchall()
                return rows
            yield run
    return opened()


def generated_sql(base: str, session: requests.Session, headers: dict, chart: dict) -> list[str]:
    """The SQL Superset runs for a chart: its saved query context with result_type "query"."""
    context = json.loads(chart["query_context"])
    context.update(result_type="query", force=True)
    answer = _post(session, f"{base}/api/v1/chart/data", context, headers).json()
    return [item["query"] for item in answer["result"]]


def _compare(base: str, session: requests.Session, owner_url: str, chart, chart_id: int) -> bool | str:
    """(a) against (c) the way the test suite compares them: True, "volatile", or the
    assertion's message. The reference's now() is the end of the chart's own time filter (at 10
    million rows a window's edge moves by a row a second), and it runs twice, up to three times,
    until no row arrived in between."""
    if chart.key in reference.VOLATILE:
        payload = _get(session, f"{base}/api/v1/chart/{chart_id}/data/?force=true").json()
        return "volatile" if reference.chart_rows(payload) else "the API returned no rows"
    for _ in range(3):
        payload = _get(session, f"{base}/api/v1/chart/{chart_id}/data/?force=true").json()
        sql = reference.at_the_charts_now(chart.reference, payload)
        before = reference.run_reference(owner_url, sql)
        after = reference.run_reference(owner_url, sql)
        if before == after:
            break
    if not reference.chart_rows(payload):
        return "the API returned no rows"
    try:
        reference.compare_chart(chart, before, payload, owner_url)
    except AssertionError as exc:
        return str(exc)[:1000] or "differs"
    return True


def measure_charts(base: str, session: requests.Session, owner_url: str, reader_url: str, runs: int,
                   progress: Progress = lambda line: None) -> list[dict]:
    """(a)-(d) for each of the 29 charts, and whether (a) equals (c)."""
    headers = csrf_headers(base, session)
    ids = {c["slice_name"]: c["id"] for c in listing(base, session, "chart")}
    titles = reference.chart_titles()
    out = []
    for number, chart in enumerate(reference.CHARTS, 1):
        if titles[chart.key] not in ids:
            raise BenchError(f"chart {chart.key} ({titles[chart.key]!r}) is not in Superset: run `sparklio-bi assets import`")
        chart_id = ids[titles[chart.key]]
        saved = _get(session, f"{base}/api/v1/chart/{chart_id}").json()["result"]
        if not saved.get("query_context"):
            raise BenchError(f"chart {chart.key} has no saved query_context")
        dataset = json.loads(saved["query_context"])["datasource"]
        with _sql_timer(owner_url, chart.reference, "public") as run:
            reference_ms, _ = timed(run, runs)
        sqls = generated_sql(base, session, headers, saved)
        with _sql_timer(reader_url, sqls) as run:
            query_ms, _ = timed(run, runs)
        data_url = f"{base}/api/v1/chart/{chart_id}/data/"
        forced_ms, _ = timed(lambda url=data_url: _get(session, url + "?force=true"), runs)
        cached_ms, answers = _cached(session, data_url, runs)
        equal = _compare(base, session, owner_url, chart, chart_id)
        entry = {"key": chart.key, "title": titles[chart.key], "chart_id": chart_id,
                 "dataset": _dataset_name(base, session, dataset), "reference_ms": reference_ms,
                 "query_ms": query_ms, "api_forced_ms": forced_ms, "api_cached_ms": cached_ms,
                 "cache_hits": answers, "queries": sqls, "equal": equal}
        out.append(entry)
        progress(f"chart {number:>2}/29 {chart.key} {titles[chart.key][:38]:<38} ref {reference_ms['p50']:>7.1f}"
                 f"  sql {query_ms['p50']:>6.1f}  api {forced_ms['p50']:>6.1f}  cached {cached_ms['p50']:>6.1f} ms"
                 f"  {'equal' if equal is True else equal if equal == 'volatile' else 'DIFFERS'}")
    return out


def _cached(session: requests.Session, url: str, runs: int) -> tuple[dict, str]:
    """The data API without force, after one warm-up; and how many answers came from the cache
    (the cache is per gunicorn worker without Redis: a keep-alive connection stays on one)."""
    hits = []

    def request():
        answer = _get(session, url).json()
        hits.append(bool(answer["result"][0].get("is_cached")))
    ms, _ = timed(request, runs)
    return ms, f"{sum(hits[1:])}/{runs}"


_DATASETS: dict[tuple[str, int], str] = {}


def _dataset_name(base: str, session: requests.Session, datasource: dict) -> str:
    key = (base, int(datasource["id"]))
    if key not in _DATASETS:
        found = _get(session, f"{base}/api/v1/dataset/{datasource['id']}").json()["result"]
        _DATASETS[key] = f"{found.get('schema') or ''}.{found['table_name']}".lstrip(".")
    return _DATASETS[key]


# --- per dashboard ----------------------------------------------------------------------------

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
    charts = _get(session, f"{base}/api/v1/dashboard/{dashboard['id']}/charts").json()["result"]
    detail = _get(session, f"{base}/api/v1/dashboard/{dashboard['id']}").json()["result"]
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
            local.session = _clone(session, headers)
            sessions.append(local.session)
        worker = local.session
        if isinstance(job, int):
            _get(worker, f"{base}/api/v1/chart/{job}/data/?force=true")
        else:
            _post(worker, f"{base}/api/v1/chart/data", job, {})

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
    from . import browser

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


def measure(base: str, session: requests.Session, owner_url: str, reader_url: str, runs: int,
            render_cookie: str | None = None, progress: Progress = lambda line: None) -> dict:
    """Every measurement on a Superset serving the bundle at `base`, logged in as `session`'s
    user (an admin); owner_url: the analytics database as its owner (reference SQL, source
    tables in `public`); reader_url: as the role Superset connects with. render_cookie: the
    session cookie of a form login, to render in Chromium (None: no renders)."""
    charts = measure_charts(base, session, owner_url, reader_url, runs, progress)
    dashboards = measure_dashboards(base, session, runs, progress)
    if render_cookie:
        measure_renders(base, render_cookie, dashboards, runs, progress)
    return {"runs": runs, "charts": charts, "dashboards": dashboards,
            "targets": evaluate(charts, dashboards)}


def measure_rollups(base: str, session: requests.Session, owner_url: str, settings, runs: int,
                    progress: Progress) -> dict:
    """The rollups' upkeep and freshness, after everything else (it writes rows): each run, one
    refresh interval's worth of new rows at the data's own rate (agent_logs and router_logs copied
    from the latest, with created_at now; a few workflows completed), then one incremental refresh,
    timed; then how long a failure inserted now, and one dated three days back, take to show in
    charts 2.1 and 8.2 as a dashboard loads them (the served refresher and the cache included)."""
    from . import rollups

    with database.connect(owner_url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) / greatest(extract(epoch from max(created_at) - min(created_at)), 1) "
                    "from public.agent_logs")
        per_second = float(cur.fetchone()[0])
    batch = max(1, round(per_second * settings.refresh_seconds))
    samples = []
    for _ in range(runs):
        with database.connect(owner_url) as conn, conn.cursor() as cur:
            insert_new_rows(cur, batch)
            cur.execute("""update public.workflows set status = 'completed', completed_at = now()
                           where id in (select id from public.workflows where status = 'running' limit %s)""",
                        (max(1, batch // 6),))
        started = time.perf_counter()
        rollups.refresh_in_transaction(owner_url, settings)
        samples.append((time.perf_counter() - started) * 1000)
    refresh = stats(samples)
    share = refresh["p50"] / (settings.refresh_seconds * 1000)
    progress(f"rollup refresh after {batch} new rows: p50 {refresh['p50']:.0f} ms every {settings.refresh_seconds:g} s "
             f"= {100 * share:.1f} % of one core at most")

    ids = {c["slice_name"]: c["id"] for c in listing(base, session, "chart")}
    titles = reference.chart_titles()
    watched = {key: ids[titles[key]] for key in ("2.1", "8.2")}
    with database.connect(owner_url) as conn, conn.cursor() as cur:
        cur.execute("select id from public.workflows order by id desc limit 1")
        workflow = cur.fetchone()[0]
        run = datetime.now(timezone.utc).strftime("%H%M%S")  # names of their own: earlier runs' probes stay
        probes = {"inserted_now": f"bench_probe_now_{run}", "inserted_3_days_back": f"bench_probe_late_{run}"}
        for probe, age in ((probes["inserted_now"], "0 minutes"), (probes["inserted_3_days_back"], "3 days")):
            cur.execute("""insert into public.agent_logs (workflow_id, agent_name, model, status, latency_ms,
                           error_type, error_message, error_at, created_at)
                           values (%s, %s, 'gpt-4o', 'error', 500, %s, 'bench probe',
                                   now() - %s::interval, now() - %s::interval)""", (workflow, probe, probe, age, age))
    inserted = time.perf_counter()
    shown: dict[str, float] = {}
    while len(shown) < 2 and time.perf_counter() - inserted < 180:
        seen = set()
        for chart_id in watched.values():
            data = _get(session, f"{base}/api/v1/chart/{chart_id}/data/").json()["result"][0]["data"]
            seen |= {value for row in data for value in row.values()}
        for name, probe in probes.items():
            if probe in seen and name not in shown:
                shown[name] = round(time.perf_counter() - inserted, 1)
        time.sleep(1)
    progress(f"freshness: a row inserted now showed after {shown.get('inserted_now')} s, one dated 3 days "
             f"back after {shown.get('inserted_3_days_back')} s")
    return {"refresh_ms": refresh, "rows_per_refresh": batch, "refresh_interval_s": settings.refresh_seconds,
            "refresh_core_share": round(share, 4),
            "freshness_s": {name: shown.get(name) for name in probes}}


# The ranges a person can pick on the charts (Superset's names, relative to now) and a few
# custom ones whose ends fall at any second, drawn with a fixed seed (tests/test_time_ranges.py
# proves the numbers for many more)
NAMED_RANGES = ("Last day", "Last week", "Last month", "Last quarter", "Last year", "previous calendar week",
                "previous calendar month", 'DATEADD(DATETIME("now"), -1, hour) : now',
                'DATEADD(DATETIME("now"), -6, hour) : now', "No filter")
CUSTOM_RANGES = 4


def insert_new_rows(cur, rows: int) -> None:
    """`rows` new agent_logs and as many router_logs, copies of the latest, created now."""
    for table, columns in (("agent_logs", "workflow_id, agent_name, model, status, latency_ms, error_type, "
                                          "error_message, error_at, recovered_at"),
                           ("router_logs", "workflow_id, intent_type, selected_model, risk_level, "
                                           "context_size_before, context_size_after")):
        cur.execute(f"insert into public.{table} ({columns}, created_at) "
                    f"select {columns}, now() from public.{table} order by id desc limit %s", (rows,))


class Writer(threading.Thread):
    """Rows arriving while the bench measures: every second, agent_logs and router_logs rows (copies
    of the latest, created now) at `per_hour` rows an hour each, as Sparklio's application writes."""

    def __init__(self, owner_url: str, per_hour: float):
        super().__init__(daemon=True)
        self.owner_url, self.per_hour, self.written = owner_url, per_hour, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        due = 0.0
        with database.connect(self.owner_url, autocommit=True) as conn, conn.cursor() as cur:
            while not self.stopped.wait(1.0):
                due += self.per_hour / 3600
                batch, due = int(due), due - int(due)
                if not batch:
                    continue
                insert_new_rows(cur, batch)
                self.written += batch


def ranged_charts(rollups_only: bool = True) -> list[dict]:
    """The charts of assets/ on the rollup datasets (or, not `rollups_only`, on any dataset with
    a time column: every chart a time range applies to), each with its dataset's "view" and
    "time_column"."""
    from .assets import RANGED_VIEWS, load_yaml

    datasets = {}
    for path in sorted((PROJECT_ROOT / "assets" / "datasets").glob("*/*.yaml")):
        cfg = load_yaml(path.read_text())
        if cfg["table_name"] in RANGED_VIEWS if rollups_only else cfg.get("main_dttm_col"):
            datasets[cfg["uuid"]] = cfg
    out = []
    for path in sorted((PROJECT_ROOT / "assets" / "charts").glob("*.yaml")):
        chart = load_yaml(path.read_text())
        dataset = datasets.get(chart["dataset_uuid"])
        if dataset:
            out.append({**chart, "view": dataset["table_name"], "time_column": dataset["main_dttm_col"]})
    return out


def queries_for_ranges(chart: dict, time_ranges: list[str]) -> list[dict]:
    """The chart's saved query once per time range: its time range filter set to each (one on
    its dataset's time column added when the chart has none)."""
    (query,) = json.loads(chart["query_context"])["queries"]
    queries = []
    for time_range in time_ranges:
        q = json.loads(json.dumps(query))
        ranged = [f for f in q["filters"] if f["op"] == "TEMPORAL_RANGE"]
        if not ranged:  # a chart over all time by default
            ranged = [{"col": chart["time_column"], "op": "TEMPORAL_RANGE"}]
            q["filters"].append(ranged[0])
        ranged[0]["val"] = time_range
        queries.append(q)
    return queries


def recent_hourly_rate(owner_url: str) -> float:
    """agent_logs rows an hour over the data's last 24 hours."""
    with database.connect(owner_url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) / 24.0 from public.agent_logs where created_at >= "
                    "(select max(created_at) from public.agent_logs) - interval '24 hours'")
        return float(cur.fetchone()[0])


def measure_ranges(base: str, session: requests.Session, owner_url: str, reader_url: str, runs: int,
                   progress: Progress, seed: int = 15) -> dict:
    """Each chart a time range applies to, for each of NAMED_RANGES, CUSTOM_RANGES random custom ranges and
    its default: the SQL Superset writes for that range (chart data API, result_type "query"),
    timed as the reader role while a Writer adds rows at the data's recent hourly rate and the
    served refresher runs; beside each figure, how many agent_logs rows were after the agent
    rollup's watermark (the live part) when it was measured."""
    import random

    rng = random.Random(seed)
    per_hour = recent_hourly_rate(owner_url)
    writer = Writer(owner_url, per_hour)
    writer.start()
    ids = {c["slice_name"]: c["id"] for c in listing(base, session, "chart")}
    dataset_ids = {d["table_name"]: d["id"] for d in listing(base, session, "dataset")}
    headers = csrf_headers(base, session)
    keys = {title: key for key, title in reference.chart_titles().items()}
    out = []
    try:
        with database.connect(owner_url) as conn, conn.cursor() as cur:
            cur.execute("select now()")
            now = cur.fetchone()[0]
        for chart in ranged_charts(rollups_only=False):
            context = json.loads(chart["query_context"])
            default = next((f["val"] for f in context["queries"][0]["filters"] if f["op"] == "TEMPORAL_RANGE"),
                           "No filter")
            custom = []
            for _ in range(CUSTOM_RANGES):
                start = now - timedelta(seconds=rng.randint(3600, 60 * 86400))
                end = start + timedelta(seconds=rng.randint(600, 20 * 86400))
                custom.append(f"{start.replace(tzinfo=None).isoformat(timespec='seconds')} : "
                              f"{min(end, now).replace(tzinfo=None).isoformat(timespec='seconds')}")
            ranges = [default, *NAMED_RANGES, *custom]
            context.update(queries=queries_for_ranges(chart, ranges), result_type="query", force=True,
                           datasource={"id": dataset_ids[chart["view"]], "type": "table"},
                           form_data={**context["form_data"], "slice_id": ids[chart["slice_name"]]})
            answer = _post(session, f"{base}/api/v1/chart/data", context, headers).json()
            figures = {}
            for i, (time_range, item) in enumerate(zip(ranges, answer["result"])):
                with _sql_timer(reader_url, item["query"]) as run:
                    figure, _ = timed(run, runs)
                with database.connect(owner_url) as conn, conn.cursor() as cur:
                    cur.execute("select count(*) from public.agent_logs where created_at >= "
                                "(select watermark from analytics.rollup_state where rollup = 'agent')")
                    figure["live_rows"] = cur.fetchone()[0]
                figures[f"default: {time_range}" if i == 0 else time_range] = figure
            worst = max(figures.values(), key=lambda f: f["p95"])
            key = keys.get(chart["slice_name"], "?")
            progress(f"ranges {key:<4} {chart['slice_name'][:34]:<34} worst p95 {worst['p95']:>6.1f} ms "
                     f"over {len(figures)} ranges")
            out.append({"key": key, "title": chart["slice_name"], "dataset": chart["view"], "ranges": figures})
    finally:
        writer.stopped.set()
        writer.join(10)
    hours = writer.written / per_hour if per_hour else 0
    return {"charts": out, "write_rate_per_hour": round(per_hour), "rows_written": writer.written,
            "written_over_hours": round(hours, 3),
            "how": "each range's SQL from the chart data API (result_type query), timed as the reader after one "
                   "warm-up, while agent_logs and router_logs rows arrived every second at the data's last-24-hour "
                   "rate and `serve`'s refresher ran every 30 s; live_rows: agent_logs rows after the agent "
                   "rollup's watermark right after the figure was taken"}


def range_targets(measured: dict) -> dict:
    """Every ranged chart's generated SQL p95 <= 50 ms for every range, while rows arrive."""
    offenders = sorted({f"{c['key']} {name}" for c in measured["charts"] for name, f in c["ranges"].items()
                        if f["p95"] > 50.0})
    worst = max((f["p95"] for c in measured["charts"] for f in c["ranges"].values()), default=0.0)
    return {"range_query_p95": {"target": "every chart's generated SQL, p95 <= 50 ms for every range, "
                                          "while rows arrive", "figure": f"worst {worst:.1f} ms",
                                "met": not offenders, "offenders": offenders}}


def rollup_targets(measured: dict) -> dict:
    """Freshness <= 60 s for a row inserted now and one dated back; upkeep < 10 % of one core."""
    fresh = measured["freshness_s"]
    worst = max((v for v in fresh.values() if v is not None), default=None)
    missing = [k for k, v in fresh.items() if v is None]
    share = measured["refresh_core_share"]
    return {
        "freshness": {"target": "a row inserted into agent_logs shows in the charts within 60 s",
                      "figure": f"worst {worst} s" if worst is not None else "never shown",
                      "met": not missing and worst is not None and worst <= 60,
                      "offenders": missing + [k for k, v in fresh.items() if v is not None and v > 60]},
        "refresh_cost": {"target": "the rollup refresh costs < 10 % of one core",
                         "figure": f"{100 * share:.1f} % (p50 {measured['refresh_ms']['p50']:.0f} ms "
                                   f"every {measured['refresh_interval_s']} s)",
                         "met": share < 0.10, "offenders": [] if share < 0.10 else ["refresh"]},
    }


def evaluate(charts: list[dict], dashboards: list[dict]) -> dict:
    """Each target: met or not, the worst figure and the offenders."""
    def over(entries, field, limit, label):
        offenders = [{label: e[label], field: e[field]["p95"]} for e in entries
                     if e.get(field) and e[field]["p95"] > limit]
        measured = [e[field]["p95"] for e in entries if e.get(field)]
        return {"met": not offenders and bool(measured), "worst_ms": max(measured) if measured else None,
                "offenders": offenders}

    out = {}
    for name, field, entries, label in (("query_p95", "query_ms", charts, "key"),
                                        ("api_forced_p95", "api_forced_ms", charts, "key"),
                                        ("dashboard_concurrent_p95", "concurrent_ms", dashboards, "title"),
                                        ("render", "render_ms", dashboards, "title"),
                                        ("render_warm_browser", "render_warm_browser_ms", dashboards, "title")):
        description, limit = TARGETS[name]
        result = over(entries, field, limit, label)
        if name.startswith("render") and not any(d.get("render_ms") for d in dashboards):
            result = {"met": None, "worst_ms": None, "offenders": [], "skipped": "--skip-browser"}
        out[name] = {"target": description, "limit_ms": limit, **result}
    reference_sum = sum(c["reference_ms"]["p50"] for c in charts)
    for name, field in (("speedup_query", "query_ms"), ("speedup", "api_forced_ms")):
        total = sum(c[field]["p50"] for c in charts)
        ratio = reference_sum / total if total else None
        description, limit = TARGETS[name]
        out[name] = {"target": description, "ratio": round(ratio, 3) if ratio is not None else None,
                     "reference_p50_sum_ms": round(reference_sum, 1), f"{field[:-3]}_p50_sum_ms": round(total, 1),
                     "met": ratio is not None and ratio >= limit,
                     "offenders": [] if ratio is not None and ratio >= limit else ["the sums' ratio"]}
    return out


# --- reports ----------------------------------------------------------------------------------

def _ms(figure: dict | None, key: str = "p50") -> str:
    return "-" if not figure else f"{figure[key]:,.1f}"


def summary_lines(results: dict) -> list[str]:
    """The summary table printed at the end."""
    lines = [f"{'chart':<5} {'title':<34} {'ref p50':>9} {'sql p50':>8} {'sql p95':>8} {'api p50':>8} "
             f"{'api p95':>8} {'cached':>7}  equal"]
    for c in results["charts"]:
        equal = "yes" if c["equal"] is True else c["equal"] if c["equal"] == "volatile" else "NO"
        lines.append(f"{c['key']:<5} {c['title'][:34]:<34} {_ms(c['reference_ms']):>9} {_ms(c['query_ms']):>8} "
                     f"{_ms(c['query_ms'], 'p95'):>8} {_ms(c['api_forced_ms']):>8} "
                     f"{_ms(c['api_forced_ms'], 'p95'):>8} {_ms(c['api_cached_ms']):>7}  {equal}")
    lines += ["", f"{'dashboard':<34} {'reqs':>4} {'conc p50':>9} {'conc p95':>9} {'render p50':>11} "
                  f"{'render p95':>11} {'warm p50':>9}"]
    for d in results["dashboards"]:
        lines.append(f"{d['title'][:34]:<34} {d['requests']:>4} {_ms(d['concurrent_ms']):>9} "
                     f"{_ms(d['concurrent_ms'], 'p95'):>9} {_ms(d['render_ms']):>11} {_ms(d['render_ms'], 'p95'):>11} "
                     f"{_ms(d.get('render_warm_browser_ms')):>9}")
    lines.append("")
    for name, target in results["targets"].items():
        state = "skipped" if target["met"] is None else "met" if target["met"] else "NOT MET"
        extra = f" ({target['figure']})" if "figure" in target else \
            f" (ratio {target['ratio']})" if name.startswith("speedup") else \
            f" (worst {target['worst_ms']:,.1f} ms)" if target.get("worst_ms") is not None else ""
        offenders = ", ".join(str(next(iter(o.values()))) if isinstance(o, dict) else str(o)
                              for o in target["offenders"])
        lines.append(f"{state:<8} {target['target']}{extra}" + (f": {offenders}" if offenders else ""))
    return lines


def markdown(results: dict) -> str:
    """benchmarks/RESULTS-dashboards.md: generated, to paste from."""
    m = results.get("machine", {})
    out = ["# Dashboard benchmark", "",
           f"Generated by `{results.get('command', 'sparklio-bi bench')}` on {results.get('date', '?')} "
           f"(git {results.get('git_revision', '?')}). Do not edit: run it again.", "",
           f"Machine: {m.get('platform', '?')}, {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, "
           f"{m.get('memory_gib', '?')} GiB RAM. Scale {results.get('scale', '?')}, {results['runs']} runs "
           "after one warm-up; times in ms.", ""]
    if results.get("row_counts"):
        out += ["Rows: " + ", ".join(f"{t} {n:,}" for t, n in results["row_counts"].items()) + ".", ""]
    boot = results.get("bootstrap") or {}
    if boot:
        parts = [f"bootstrap {boot.get('seconds', 0):.1f} s"]
        if boot.get("seeded"):
            parts.append(f"seed step {boot.get('seed_seconds', 0):.1f} s (peak RSS of the bootstrap process "
                         f"through seeding {boot.get('seed_peak_rss_mib', 0):.0f} MiB)")
        else:
            parts.append("data of the same scale re-used (not seeded)")
        if boot.get("migrate_seconds") is not None:
            parts.append(f"migrate step {boot['migrate_seconds']:.2f} s")
        if boot.get("db_upgrade_seconds") is not None:
            parts.append(f"`db upgrade` at head {boot['db_upgrade_seconds']:.2f} s")
        if boot.get("rollups_full_seconds") is not None:
            parts.append(f"rollups rebuilt from every row (`rollups refresh --full`, what migrations 0007 "
                         f"and 0012 do) {boot['rollups_full_seconds']:.0f} s")
        out += ["Setup: " + "; ".join(parts) + ".", ""]
    roll = results.get("rollups")
    if roll:
        fresh = roll["freshness_s"]
        out += [f"Rollups: an incremental refresh after {roll['rows_per_refresh']} new agent_logs and router_logs "
                f"rows (the data's own rate over {roll['refresh_interval_s']} s) took p50 {roll['refresh_ms']['p50']:.0f} ms, "
                f"p95 {roll['refresh_ms']['p95']:.0f} ms: {100 * roll['refresh_core_share']:.1f} % of one core at most "
                f"(wall time, client and server). A failure inserted now showed in charts 2.1 and 8.2 (as a "
                f"dashboard loads them, cache allowed) after {fresh['inserted_now']} s; one dated 3 days back "
                f"after {fresh['inserted_3_days_back']} s.", ""]
    out += ["(a) reference SQL on the source tables as the owner; (b) the SQL Superset generates, run "
            "directly as the reader role; (c) `GET /api/v1/chart/<id>/data/?force=true`; (d) the same, "
            "cached. Equal: (a) and (c) give the same figures.", "",
            "| chart | title | (a) ref p50 | (b) SQL p50 | (b) p95 | (c) API p50 | (c) p95 | (d) cached p50 | equal |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for c in results["charts"]:
        equal = "yes" if c["equal"] is True else "volatile" if c["equal"] == "volatile" else "**no**"
        out.append(f"| {c['key']} | {c['title']} | {_ms(c['reference_ms'])} | {_ms(c['query_ms'])} | "
                   f"{_ms(c['query_ms'], 'p95')} | {_ms(c['api_forced_ms'])} | {_ms(c['api_forced_ms'], 'p95')} | "
                   f"{_ms(c['api_cached_ms'])} | {equal} |")
    out += ["", "Dashboards: every chart's data (forced) and every select filter's options, fired "
            f"concurrently over {BROWSER_CONNECTIONS} connections; render: a fresh headless Chromium, "
            "`?force=true`, from navigation to every chart drawn (warm browser: the same page again in the same "
            "browser, its HTTP cache warm, data still forced; of which: the first chart data request sent, and "
            "the last chart data answer received, after navigation start, from the page's Resource Timing).", "",
            "| dashboard | requests | concurrent p50 | p95 | render p50 | render p95 | warm browser p50 | "
            "first data request | last data |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in results["dashboards"]:
        split = d.get("render_warm_browser_phases_ms") or {}
        out.append(f"| {d['title']} | {d['requests']} | {_ms(d['concurrent_ms'])} | {_ms(d['concurrent_ms'], 'p95')} | "
                   f"{_ms(d['render_ms'])} | {_ms(d['render_ms'], 'p95')} | {_ms(d.get('render_warm_browser_ms'))} | "
                   f"{_ms(split.get('first_data_request'))} | {_ms(split.get('last_data'))} |")
    ranged = results.get("ranges")
    if ranged:
        names = list(ranged["charts"][0]["ranges"]) if ranged["charts"] else []
        out += ["", f"Time ranges: the generated SQL (b) of each chart a time range applies to, for every range below, while "
                f"{ranged['write_rate_per_hour']:,} agent_logs and as many router_logs rows an hour arrived "
                f"({ranged['rows_written']:,} each during the measurement) and the refresher ran; p95 in ms; "
                "live: the most agent_logs rows after the watermark seen beside a figure. "
                "Custom ranges end at any second (seeded).", "",
                "| chart | default p95 | worst p95 | worst range | live rows (max) |", "|---|---:|---:|---|---:|"]
        for c in ranged["charts"]:
            default = next((f for n, f in c["ranges"].items() if n.startswith("default: ")), None)
            worst_name, worst = max(c["ranges"].items(), key=lambda item: item[1]["p95"])
            out.append(f"| {c['key']} {c['title']} | {_ms(default, 'p95')} | {worst['p95']:.1f} | {worst_name} | "
                       f"{max(f['live_rows'] for f in c['ranges'].values()):,} |")
        out += ["", "Ranges measured: " + "; ".join(f"`{n}`" for n in names) + "."]
    out += ["", "| target | result | offenders |", "|---|---|---|"]
    for name, t in results["targets"].items():
        state = "skipped" if t["met"] is None else "met" if t["met"] else "**not met**"
        figure = t["figure"] if "figure" in t else f"ratio {t['ratio']}" if name.startswith("speedup") else \
            f"worst {t['worst_ms']:,.1f} ms" if t.get("worst_ms") is not None else ""
        offenders = ", ".join(f"{next(iter(o.values()))} ({o.get(next(k for k in o if k.endswith('_ms')), '')})"
                              if isinstance(o, dict) else str(o) for o in t["offenders"]) or "-"
        out.append(f"| {t['target']} | {state}{', ' + figure if figure else ''} | {offenders} |")
    return "\n".join(out) + "\n"


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_model": cpu,
            "cores": os.cpu_count(), "memory_gib": round(memory / 2**30, 1)}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def git_revision() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "HEAD") or "unknown"
    return f"{head} dirty" if git("status", "--porcelain", "--untracked-files=no") else head


# --- the whole bundle of its own (the CLI) ----------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_environment(data_dir: Path, pg_port: int) -> dict[str, str]:
    """The children's environment: the bench's own data dir and server, nothing of the user's."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(SPARKLIO_DATA_DIR=str(data_dir), SPARKLIO_PG_PORT=str(pg_port), PYTHONUNBUFFERED="1")
    return env


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(_read(str(path)).strip().splitlines()[-lines:])


def _peak_rss_mib(pid: int) -> float | None:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def bootstrap(env: dict, data_dir: Path, scale: float, reseed: bool, progress: Progress) -> dict:
    """`sparklio-bi bootstrap --scale N --no-serve` (with --reseed when asked or when the data
    dir holds another scale), its output streamed to bootstrap.log; each step's start is
    timestamped, so the migrate and seed steps are timed, and the process's peak RSS is read
    when seeding ends."""
    marker = data_dir / "bench-scale"
    previous = marker.read_text().strip() if marker.exists() else None
    reseed = reseed or (previous is not None and float(previous) != scale)
    args = ["bootstrap", "--scale", f"{scale:g}", "--no-serve", *(["--reseed"] if reseed else [])]
    log_path = data_dir / "bootstrap.log"
    progress(f"sparklio-bi {' '.join(args)}  (output in {log_path})")
    steps: dict[str, float] = {}
    rss_after_seed, seeded, last_step = None, False, ""
    seed_done = None
    started = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        try:
            for line in proc.stdout:
                log.write(line)
                text = line.strip()
                if text.startswith("==> ") and "/7 " in text[:9]:
                    number = text[4]
                    steps[number] = time.perf_counter() - started
                    if number == "4":
                        seeded = text == "==> 4/7 demo data"  # else "...: kept" or "...: skipped"
                    last_step = number
                    progress(f"  {text[4:]}")
                elif text.startswith("==>    ") or text.startswith("==> ready"):
                    if last_step == "4" and seed_done is None:  # the seeded row counts: seeding is over
                        seed_done = time.perf_counter() - started
                        rss_after_seed = _peak_rss_mib(proc.pid)
                    progress(f"  {text[4:]}")
            proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait(30)
            raise
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(f"bootstrap failed (status {proc.returncode}); the end of {log_path}:\n{_tail(log_path)}")
    marker.write_text(f"{scale:g}\n")
    result = {"seconds": round(seconds, 2), "seeded": seeded, "reseed": reseed,
              "migrate_seconds": round(steps["4"] - steps["3"], 3) if {"3", "4"} <= steps.keys() else None,
              "migrate_note": ("step 3/7: migrations before seeding, on empty tables" if seeded and previous is None
                               else "step 3/7 on existing data (at head: nothing to migrate)"),
              "superset_seconds": round(seconds - steps["5"], 2) if "5" in steps else None}
    if seeded and "4" in steps and seed_done is not None:
        result.update(seed_seconds=round(seed_done - steps["4"], 2),
                      seed_peak_rss_mib=round(rss_after_seed, 1) if rss_after_seed else None)
    return result


def run_cli(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise BenchError(f"sparklio-bi {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


def serve(env: dict, data_dir: Path, port: int, progress: Progress) -> subprocess.Popen:
    """`sparklio-bi serve` in the background, once /health answers."""
    log_path = data_dir / "serve.log"
    progress(f"sparklio-bi serve --port {port} --collect-interval 30  (output in {log_path})")
    log = open(log_path, "wb")
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--collect-interval", "30"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"sparklio-bi serve exited with status {proc.returncode}; the end of {log_path}:\n"
                             f"{_tail(log_path)}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base}/health", timeout=5).status_code == 200:
                return proc
        time.sleep(1)
    stop_server(proc)
    raise BenchError(f"Superset did not answer {base}/health within 180 s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to `sparklio-bi serve` (it stops gunicorn and the collector), then its group."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def row_counts(owner_url: str) -> dict[str, int]:
    from .views import SOURCE_TABLES

    with database.connect(owner_url) as conn, conn.cursor() as cur:
        counts = {}
        for table in SOURCE_TABLES:
            cur.execute(f"select count(*) from public.{table}")
            counts[table] = cur.fetchone()[0]
        return counts


def run(scale: float, runs: int, output: Path, data_dir: Path, skip_browser: bool, keep: bool, reseed: bool,
        port: int | None, progress: Progress, command: str) -> dict:
    """The whole benchmark on a bundle of its own; returns the results written to `output`."""
    from sqlalchemy.engine import make_url

    from . import browser, config, embedded_pg

    if port is not None and embedded_pg.port_taken(port):
        raise BenchError(f"port {port} is taken by another program: pass another --port, or none for a free one")
    if not skip_browser:
        import shutil
        if not (shutil.which("chromium") and shutil.which("chromedriver")):
            raise BenchError("Debian's chromium and chromium-driver are needed for renders "
                             "(apt-get install chromium chromium-driver), or pass --skip-browser")
    data_dir = data_dir.resolve()
    if data_dir in {(PROJECT_ROOT / ".data").resolve(), config.load().data_dir}:
        raise BenchError(f"--dir {data_dir} is the install's own data dir: the bench needs one of its own")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / ".gitignore").write_text("*\n")  # keeps git status clean inside the project
    running = embedded_pg.status(config.load(bench_environment(data_dir, 5433)))
    pg_port = running.port if running.running else free_port()
    env = bench_environment(data_dir, pg_port)
    settings = config.load(env)
    started = time.perf_counter()
    server, web_port = None, port or free_port()
    progress(f"bench data dir {data_dir}, embedded PostgreSQL on 127.0.0.1:{pg_port}")
    try:
        boot = bootstrap(env, data_dir, scale, reseed, progress)
        upgrade_started = time.perf_counter()
        run_cli(env, "db", "upgrade")
        boot["db_upgrade_seconds"] = round(time.perf_counter() - upgrade_started, 3)
        progress(f"db upgrade (at head) {boot['db_upgrade_seconds']:.2f}s")
        rebuild_started = time.perf_counter()
        run_cli(env, "rollups", "refresh", "--full", timeout=3600)
        boot["rollups_full_seconds"] = round(time.perf_counter() - rebuild_started, 1)
        progress(f"rollups rebuilt from every row (what migrations 0007 and 0012 do at this size) in "
                 f"{boot['rollups_full_seconds']:.0f}s")
        owner_url = run_cli(env, "db", "url").stdout.strip()
        reader_password = (data_dir / datadir.READER_PASSWORD).read_text().strip()
        reader_url = make_url(owner_url).set(username=settings.reader_role, password=reader_password) \
            .render_as_string(hide_password=False)
        counts = row_counts(owner_url)
        progress("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
        server = serve(env, data_dir, web_port, progress)
        base = f"http://127.0.0.1:{web_port}"
        password = (data_dir / datadir.ADMIN_PASSWORD).read_text().strip()
        session = browser.form_login(base, "admin", password)
        results = measure(base, session, owner_url, reader_url, runs,
                          render_cookie=None if skip_browser else session.cookies["session"], progress=progress)
        results["ranges"] = measure_ranges(base, session, owner_url, reader_url, runs, progress)
        results["targets"].update(range_targets(results["ranges"]))
        results["rollups"] = measure_rollups(base, session, owner_url, settings, runs, progress)
        results["rollups"]["full_rebuild_s"] = boot.get("rollups_full_seconds")
        results["targets"].update(rollup_targets(results["rollups"]))
        results = {"machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "git_revision": git_revision(), "command": command, "scale": scale, "data_dir": str(data_dir),
                   "row_counts": counts, "bootstrap": boot,
                   "total_seconds": round(time.perf_counter() - started, 1), **results}
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2, default=str) + "\n")
        output.with_name(MARKDOWN_NAME).write_text(markdown(results))
        return results
    finally:
        if server is not None and not keep:
            progress("stopping Superset")
            stop_server(server)
        if not keep:
            progress("stopping the bench's PostgreSQL")
            with contextlib.suppress(Exception):
                run_cli(env, "db", "stop", timeout=120)
        elif server is not None:
            progress(f"kept: Superset on http://127.0.0.1:{web_port} "
                     f"(pid {server.pid}), PostgreSQL on {pg_port}; SPARKLIO_DATA_DIR={data_dir} "
                     f"SPARKLIO_PG_PORT={pg_port} sparklio-bi db stop")


def command_line(argv: list[str] | None = None) -> str:
    return shlex.join(["sparklio-bi", *(sys.argv[1:] if argv is None else argv)])
