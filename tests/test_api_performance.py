"""Dashboard 9, API Performance (issue 32), on the service-metrics sink's tables: the quantile SQL is
Prometheus's histogram_quantile (computed here again in Python, in exact fractions), the quarter hours the
triggers keep are the minutes added up, the demo traffic is consistent, every chart through Superset's chart
data API equals its reference SQL on the raw minutes for many seeded random ranges, and the dashboard
renders in headless Chromium with data."""
from __future__ import annotations

import random
import re
import tempfile
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from sparklio_bi import config
from sparklio_bi.postgres import database
from sparklio_bi.quality import reference, reference_api
from sparklio_bi.superset import assets
from sparklio_bi.warehouse import views
from sparklio_bi.warehouse.seed import api_traffic
from tests.conftest import ADMIN_PASSWORD, SCREENSHOTS, api_list, chart_ids, dataset_ids, form_login
from tests.test_time_ranges import NAMED, chart_context, random_ranges, superset_range

SEED = 32
BOUNDS = [Fraction(bound) for bound in reference_api.BOUNDS]
BUCKETS = ", ".join(reference_api.BUCKET_COLUMNS)
DATASET = assets.ASSETS_DIR / "datasets" / "Sparklio_Analytics" / "api_request_stats.yaml"


def histogram_quantile(q: Fraction, cumulative: list[int], total: int) -> Fraction | None:
    """Prometheus's histogram_quantile (promql/quantile.go, bucketQuantile) on the default buckets."""
    if total <= 0 or not 0 < q <= 1:
        return None
    rank = q * total
    for index, count in enumerate(cumulative):
        if count >= rank:
            below = cumulative[index - 1] if index else 0
            lower = BOUNDS[index - 1] if index else Fraction(0)
            return lower + (BOUNDS[index] - lower) * (rank - below) / (count - below)
    return BOUNDS[-1]  # the rank is in the +Inf bucket: the highest finite bound


def random_histogram(rng: random.Random) -> tuple[list[int], int]:
    """Cumulative counts of a few observations or many, some buckets empty, some in +Inf."""
    counts = [rng.choice([0, 0, rng.randint(0, 3), rng.randint(0, 500)]) for _ in range(len(BOUNDS) + 1)]
    cumulative, total = [], 0
    for count in counts[:-1]:
        total += count
        cumulative.append(total)
    return cumulative, total + counts[-1]


def test_the_quantile_sql_is_prometheus_histogram_quantile(seeded_url):
    """analytics.histogram_quantile (the reference's) and quantile_sql (the charts' CASE) give
    Prometheus's quantile, computed here in exact fractions, for 400 random histograms and 6 quantiles."""
    rng = random.Random(SEED)
    histograms = [random_histogram(rng) for _ in range(400)] + [([0] * 14, 0), ([0] * 14, 5), ([7] * 14, 7)]
    quantiles = ["0.5", "0.95", "0.99", "0.999", "1", "0.01"]
    columns = ", ".join(f"{reference_api.quantile_sql(q)} as q{i}" for i, q in enumerate(quantiles))
    problems = []
    with database.connect(seeded_url) as conn, conn.cursor() as cur:
        for cumulative, total in histograms:
            values = ", ".join(map(str, cumulative))
            cur.execute(f"select {columns} from (values ({values}, {total})) as h ({BUCKETS}, requests)")
            cases = cur.fetchone()
            for q, case in zip(quantiles, cases):
                cur.execute("select analytics.histogram_quantile(%s::numeric, %s::numeric[], %s)", (q, cumulative, total))
                function = cur.fetchone()[0]
                expected = histogram_quantile(Fraction(q), cumulative, total)
                for name, got in (("function", function), ("case", case)):
                    if (got is None) != (expected is None) or (
                            expected is not None and abs(float(got) - float(expected)) > 1e-12 * max(1, float(expected))):
                        problems.append(f"{name} q={q} {cumulative} {total}: {got} != {float(expected or 0)}")
    assert not problems, "\n".join(problems[:10])


def test_the_demo_traffic_is_consistent_and_the_quarters_are_its_minutes_added_up(bootstrapped):
    """Every seeded minute's buckets are cumulative, monotone and at most its requests; the last 90
    days, diurnal, with 4xx and 5xx; and service_request_quarters equals the minutes added up per
    quarter hour, exactly (it is kept by triggers, not by the seed)."""
    monotone = " and ".join(f"{a} <= {b}" for a, b in zip(reference_api.BUCKET_COLUMNS, reference_api.BUCKET_COLUMNS[1:]))
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute(f"select count(*), count(*) filter (where not ({monotone} and le_10 <= requests and le_0_005 >= 0)), "
                    "min(minute_start), max(minute_start), count(distinct writer), "
                    "sum(requests) filter (where status_code between 400 and 499), "
                    "sum(requests) filter (where status_code >= 500), count(distinct route) "
                    "from analytics.service_request_minutes")
        rows, broken, first, last, writers, client_errors, server_errors, routes = cur.fetchone()
        cur.execute("select now()")
        now = cur.fetchone()[0]
        assert rows > 10_000 and broken == 0 and writers == 1 and routes >= 8
        # 90 days back from the seed's own last minute (the session seeded it, maybe many minutes ago)
        assert now - timedelta(hours=2) <= last < now
        assert last - timedelta(days=90, minutes=2) <= first <= last - timedelta(days=89, hours=23)
        assert client_errors > 0 and server_errors > 0
        cur.execute("select extract(hour from minute_start)::int, sum(requests) from analytics.service_request_minutes "
                    "group by 1 order by 1")
        by_hour = dict(cur.fetchall())
        assert max(by_hour.values()) > 3 * min(by_hour.values())  # day and night
        sums = f"sum(requests), sum(seconds_sum)::numeric(30, 6), {', '.join(f'sum({c})' for c in reference_api.BUCKET_COLUMNS)}"
        cur.execute(f"select analytics.service_quarter(minute_start), route, http_method, status_code, {sums}, "
                    "min(minute_start), max(minute_start) from analytics.service_request_minutes group by 1, 2, 3, 4 "
                    "except all "
                    f"select quarter_start, route, http_method, status_code, {sums}, min(first_minute), max(last_minute) "
                    "from analytics.service_request_quarters group by 1, 2, 3, 4")
        assert cur.fetchall() == []
        cur.execute("select count(*) from analytics.service_request_quarters")
        quarters = cur.fetchone()[0]
        cur.execute("select count(*) from (select distinct analytics.service_quarter(minute_start), route, http_method, "
                    "status_code from analytics.service_request_minutes) as q")
        assert cur.fetchone()[0] == quarters
        cur.execute("select count(*) from analytics.api_routes")
        assert cur.fetchone()[0] == len(api_traffic.ENDPOINTS)


def test_a_prune_recomputes_the_quarters_it_touched(make_database):
    """A delete (the retention's prune) recomputes the quarter hours of the rows it took from the minutes
    left; an insert retried by the sink (on conflict do nothing) adds nothing; an update is refused."""
    from psycopg2 import errors

    from sparklio_bi.warehouse import migrate

    url = make_database("api_prune")
    migrate.apply_source_ddl(url, config.load())
    migrate.upgrade(url, config.load())
    ones = ", ".join(["1"] * 14)
    rows = [("10:07", "w1", 2), ("10:08", "w1", 3), ("10:07", "w2", 4), ("10:21", "w1", 5)]
    insert = ("insert into analytics.service_request_minutes values "
              + ", ".join(f"('2026-12-01 {m}+00', '/x', 'GET', 200, '{w}', {n}, 0.5, {ones})" for m, w, n in rows)
              + " on conflict do nothing")
    quarters = "select quarter_start::text, requests, le_1, first_minute::text, last_minute::text " \
               "from analytics.service_request_quarters order by 1"
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(insert)
        cur.execute(insert)  # a batch retried after a lost answer
        cur.execute(quarters)
        assert cur.fetchall() == [("2026-12-01 10:00:00+00", 9, 3, "2026-12-01 10:07:00+00", "2026-12-01 10:08:00+00"),
                                  ("2026-12-01 10:15:00+00", 5, 1, "2026-12-01 10:21:00+00", "2026-12-01 10:21:00+00")]
        cur.execute("delete from analytics.service_request_minutes where minute_start = '2026-12-01 10:07+00' or "
                    "minute_start = '2026-12-01 10:21+00'")
        cur.execute(quarters)
        assert cur.fetchall() == [("2026-12-01 10:00:00+00", 3, 1, "2026-12-01 10:08:00+00", "2026-12-01 10:08:00+00")]
        with pytest.raises(errors.FeatureNotSupported):
            cur.execute("update analytics.service_request_minutes set requests = 7")


def test_the_dataset_follows_the_views_header_and_its_quantiles_are_quantile_sql():
    """The API Performance dataset lists the view's header columns (its SQL hides the view from
    `assets validate`), its time column, and the percentiles as quantile_sql writes them."""
    dataset = yaml.safe_load(DATASET.read_text())
    header = {c.name for c in views.documented_columns("api_request_stats", 1)}
    listed = {c["column_name"] for c in dataset["columns"] if not c["expression"]}
    assert listed == header
    assert dataset["main_dttm_col"] == views.time_column("api_request_stats", 1) == "period_start"
    metrics = {m["metric_name"]: m["expression"] for m in dataset["metrics"]}
    for name, q in reference_api.QUANTILES.items():
        assert metrics[name] == reference_api.quantile_sql(q), name


# --- through Superset: every chart, many ranges, against its reference on the raw minutes ------

_BOUND = re.compile(r"period_start (>=|<) TIMESTAMPTZ '([0-9-]+ [0-9:.]+)'")


def filter_bounds(sql: str) -> tuple[str | None, str | None]:
    """The range Superset's own filter cut the rows with (the outer WHERE), as SQL literals."""
    found = dict(_BOUND.findall(sql))
    return (f"timestamptz '{found['>=']}'" if ">=" in found else None,
            f"timestamptz '{found['<']}'" if "<" in found else None)


def chart_files() -> dict[str, dict]:
    """Chart key -> its YAML, with the view and time column ranged_charts gives the others."""
    return {key: {**yaml.safe_load((assets.ASSETS_DIR / "charts" / f"{stem}.yaml").read_text()),
                  "view": "api_request_stats", "time_column": "period_start"}
            for key, stem in reference_api.CHART_FILES.items()}


@pytest.mark.slow  # about a minute: many ranges for each chart
def test_every_chart_equals_its_reference_sql_for_random_ranges(api, bootstrapped):
    """Each chart's data API answer, for its default, Superset's named ranges, "Last N hours" and 30
    seeded custom ranges ending at any second (some open-ended, some at quarter hours), equals its
    reference SQL on analytics.service_request_minutes cut by the same range."""
    url, settings = bootstrapped["url"], config.load()
    ids, datasets = chart_ids(api), dataset_ids(api)
    rng = random.Random(SEED)
    now = datetime.now(timezone.utc)
    compared, problems, sqls = 0, [], []
    for key, chart in chart_files().items():
        custom = [superset_range(s, u) for s, u in random_ranges(rng, now, 34) if s is not None]
        quarter = now.replace(minute=15 * (now.minute // 15), second=0, microsecond=0)
        ranges = ['DATEADD(DATETIME("now"), -7, day) : now', *NAMED, *custom,
                  f'DATEADD(DATETIME("now"), -{rng.randint(1, 48)}, hour) : now',
                  superset_range(quarter - timedelta(hours=5), quarter)]
        context = chart_context(chart, ids[chart["slice_name"]], datasets["api_request_stats"], ranges)
        response = api.post(f"{api.base}/api/v1/chart/data", json=context, timeout=300)
        assert response.status_code == 200, f"{key}: {response.status_code} {response.text[:500]}"
        results = response.json()["result"]
        assert len(results) == len(ranges)
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select set_config('timezone', %s, false)", (settings.timezone,))  # the reader's session zone
            for time_range, result in zip(ranges, results):
                sqls.append(result["query"])
                since, until = filter_bounds(result["query"])
                cur.execute(reference_api.reference_sql(key, since, until))
                expected = cur.fetchall()
                if not expected or (len(expected) == 1 and expected[0][0] is None):
                    assert result["data"] == [] or key in ("9.4", "9.6"), f"{key} {time_range}: rows where none are"
                    continue
                payload = {"result": [result]}
                actual = reference.in_metric_order(payload, reference.chart_rows(payload), reference_api.CHART_FILES[key])
                actual = [row[:len(expected[0])] for row in actual]
                if reference_api.REFERENCES[key][1] == "series":
                    actual = sorted(actual, key=lambda row: row[0])
                try:
                    reference.compare(reference_api.REFERENCES[key][1], expected, actual)
                    compared += 1
                except AssertionError as exc:
                    problems.append(f"{key} {time_range}: {str(exc)[:300]}")
    assert not problems, "\n".join(problems[:10])
    assert compared >= 200
    assert sum("period_seconds = 900" in sql for sql in sqls) >= 100  # the quarter hours were read
    assert all("TO_TIMESTAMP(" not in sql.upper() for sql in sqls)


@pytest.fixture(scope="module")
def browser(server):
    from sparklio_bi.quality.browser import open_browser

    session = form_login(server, "admin", ADMIN_PASSWORD)
    driver = open_browser(server, session.cookies["session"], Path(tempfile.mkdtemp(prefix="api-performance-")))
    yield driver
    driver.quit()


def test_the_dashboard_renders_every_chart_with_data_in_chromium(api, browser):
    """Every chart of API Performance drawn, none empty or in error; a screenshot kept."""
    from selenium.webdriver.common.by import By

    from sparklio_bi.quality.browser import wait_for_charts

    (dashboard,) = [d for d in api_list(api, "dashboard") if d["dashboard_title"] == reference_api.DASHBOARDS["9"]]
    charts = api.get(f"{api.base}/api/v1/dashboard/{dashboard['id']}/charts", timeout=30).json()["result"]
    assert len(charts) == len(reference_api.CHARTS)
    for chart in charts:  # each chart's own default query has rows
        data = api.get(f"{api.base}/api/v1/chart/{chart['id']}/data/", timeout=60)
        assert data.status_code == 200 and data.json()["result"][0]["rowcount"] > 0, chart["slice_name"]
    browser.get(f"{api.base}/superset/dashboard/{dashboard['id']}/")
    wait_for_charts(browser, len(charts))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "api-performance.png"))
    body = browser.find_element(By.TAG_NAME, "body").text
    alerts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[role='alert'], .ant-alert-error") if e.text.strip()]
    assert not alerts, alerts
    for text in ("No results were returned", "Unexpected error", "Error:"):
        assert text not in body
    assert "GET /projects/{id}" in body  # the routes table drew its rows
