"""Per chart: the reference SQL, the generated SQL, the data API forced and cached, compared."""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import requests

from sparklio_bi.postgres import database
from sparklio_bi.quality import reference
from sparklio_bi.quality.bench.harness import BenchError, Progress
from sparklio_bi.quality.bench.stats import timed
from sparklio_bi.superset.rest import csrf_headers, get, listing, post


def sql_timer(url: str, sql: str, search_path: str | None = None) -> Iterator:
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
    answer = post(session, f"{base}/api/v1/chart/data", context, headers).json()
    return [item["query"] for item in answer["result"]]


def _compare(base: str, session: requests.Session, owner_url: str, chart, chart_id: int) -> bool | str:
    """(a) against (c) the way the test suite compares them: True, "volatile", or the
    assertion's message. The reference's now() is the end of the chart's own time filter (at 10
    million rows a window's edge moves by a row a second). The chart and its reference are read
    up to three times, until they agree: the server's own statistics (5.2-5.4) move whenever the
    collector or the refresher runs between the two readings; a real difference stays."""
    if chart.key in reference.NOT_COMPARED:
        payload = get(session, f"{base}/api/v1/chart/{chart_id}/data/?force=true").json()
        return reference.NOT_COMPARED[chart.key] if reference.chart_rows(payload) else "the API returned no rows"
    found: bool | str = "differs"
    for _ in range(3):
        payload = get(session, f"{base}/api/v1/chart/{chart_id}/data/?force=true").json()
        if not reference.chart_rows(payload):
            return "the API returned no rows"
        expected = reference.run_reference(owner_url, reference.at_the_charts_now(chart.reference, payload))
        try:
            reference.compare_chart(chart, expected, payload, owner_url)
        except AssertionError as exc:
            found = str(exc)[:1000] or "differs"
            continue
        return True
    return found


def measure_charts(base: str, session: requests.Session, owner_url: str, reader_url: str, runs: int,
                   progress: Progress = lambda line: None, forced_runs: int | None = None) -> list[dict]:
    """(a)-(d) for each chart (c `forced_runs` times, default `runs`), and whether (a)
    equals (c)."""
    headers = csrf_headers(base, session)
    ids = {c["slice_name"]: c["id"] for c in listing(base, session, "chart")}
    titles = reference.chart_titles()
    out = []
    for number, chart in enumerate(reference.CHARTS, 1):
        if titles[chart.key] not in ids:
            raise BenchError(f"chart {chart.key} ({titles[chart.key]!r}) is not in Superset: run `sparklio-bi assets import`")
        chart_id = ids[titles[chart.key]]
        saved = get(session, f"{base}/api/v1/chart/{chart_id}").json()["result"]
        if not saved.get("query_context"):
            raise BenchError(f"chart {chart.key} has no saved query_context")
        dataset = json.loads(saved["query_context"])["datasource"]
        with sql_timer(owner_url, chart.reference, "public") as run:
            reference_ms, _ = timed(run, runs)
        sqls = generated_sql(base, session, headers, saved)
        with sql_timer(reader_url, sqls) as run:
            query_ms, _ = timed(run, runs)
        data_url = f"{base}/api/v1/chart/{chart_id}/data/"
        forced_ms, _ = timed(lambda url=data_url: get(session, url + "?force=true"), forced_runs or runs)
        cached_ms, answers = _cached(session, data_url, runs)
        equal = _compare(base, session, owner_url, chart, chart_id)
        entry = {"key": chart.key, "title": titles[chart.key], "chart_id": chart_id,
                 "dataset": _dataset_name(base, session, dataset), "reference_ms": reference_ms,
                 "query_ms": query_ms, "api_forced_ms": forced_ms, "api_cached_ms": cached_ms,
                 "cache_hits": answers, "queries": sqls, "equal": equal}
        out.append(entry)
        progress(f"chart {number:>2}/{len(reference.CHARTS)} {chart.key} {titles[chart.key][:38]:<38} "
                 f"ref {reference_ms['p50']:>7.1f}"
                 f"  sql {query_ms['p50']:>6.1f}  api {forced_ms['p50']:>6.1f}  cached {cached_ms['p50']:>6.1f} ms"
                 f"  {'equal' if equal is True else equal if equal in reference.NOT_COMPARED.values() else 'DIFFERS'}")
    return out


def _cached(session: requests.Session, url: str, runs: int) -> tuple[dict, str]:
    """The data API without force, after one warm-up; and how many answers came from the cache
    (the cache is per gunicorn worker without Redis: a keep-alive connection stays on one)."""
    hits = []

    def request():
        answer = get(session, url).json()
        hits.append(bool(answer["result"][0].get("is_cached")))
    ms, _ = timed(request, runs)
    return ms, f"{sum(hits[1:])}/{runs}"


_DATASETS: dict[tuple[str, int], str] = {}  # (base url, dataset id) -> schema.table, asked once


def _dataset_name(base: str, session: requests.Session, datasource: dict) -> str:
    key = (base, int(datasource["id"]))
    if key not in _DATASETS:
        found = get(session, f"{base}/api/v1/dataset/{datasource['id']}").json()["result"]
        _DATASETS[key] = f"{found.get('schema') or ''}.{found['table_name']}".lstrip(".")
    return _DATASETS[key]
