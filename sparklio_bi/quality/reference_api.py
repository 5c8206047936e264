"""The bundle's own charts beyond the spec: dashboard 9, API Performance, from the service-metrics sink (issue 32).
Each has its reference SQL, written in the spec's style, on the raw tables the bundle owns.

The sink writes one row per minute, route template, method, status code and writer
(analytics.service_request_minutes) with Prometheus's cumulative buckets; a quantile is Prometheus's
histogram_quantile over the buckets added up (analytics.histogram_quantile in the reference, the same
arithmetic as a CASE in the charts' metrics: `quantile_sql`). `reference_sql(key, since, until)` is a
chart's reference for any range (tests/test_api_performance.py draws many); CHARTS hold the default.
"""
from __future__ import annotations

from sparklio_bi.quality.chart_spec import Chart

DASHBOARDS: dict[str, str] = {"9": "API Performance"}  # a new dashboard's number -> its title in assets/

# Prometheus's default buckets of sparklio_http_request_duration_seconds: the le_* columns
BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5", "7.5", "10")
BUCKET_COLUMNS = tuple("le_" + bound.replace(".", "_") for bound in BOUNDS)
QUANTILES = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}
DEFAULT_RANGE = "minute_start >= now() - interval '7 days'"  # the charts' default, as the spec writes windows
MINUTES = "analytics.service_request_minutes"


def quantile(q: str) -> str:
    """The reference's q-quantile of the rows' buckets added up."""
    buckets = ", ".join(f"sum({column})" for column in BUCKET_COLUMNS)
    return f"analytics.histogram_quantile({q}, array[{buckets}], sum(requests))"


def quantile_sql(q: str) -> str:
    """The same quantile as a chart metric: a CASE over the sums (a chart calls no bundle function)."""
    rank = f"{q} * SUM(requests)"
    steps, below, lower = [], "0", "0"
    for bound, column in zip(BOUNDS, BUCKET_COLUMNS):
        count = f"SUM({column})"
        steps.append(f"WHEN {count} >= {rank} THEN {lower} + ({bound} - {lower}) * ({rank} - {below}) / "
                     f"({count} - {below})")
        below, lower = count, bound
    return f"CASE WHEN SUM(requests) > 0 THEN CASE {' '.join(steps)} ELSE {BOUNDS[-1]} END END"


SPAN = "extract(epoch from max(max(minute_start)) over () + interval '1 minute' - min(min(minute_start)) over ())"
ERRORS_5XX = "100.0 * sum(case when status_code >= 500 then requests else 0 end) / sum(requests)"
ERRORS_4XX = "100.0 * sum(case when status_code between 400 and 499 then requests else 0 end) / sum(requests)"
HOURS = "date_trunc('hour', minute_start)"

# key -> (title, kind, reference SQL with {range} for the WHERE)
REFERENCES = {
    "9.1": ("Requests per second", "series",
            f"select {HOURS} as hour, sum(requests) / 3600.0 as rps from {MINUTES} "
            "where {range} group by 1 order by 1"),
    "9.2": ("Latency p50 / p95 / p99", "series",
            f"select {HOURS} as hour, {quantile('0.5')} as p50, {quantile('0.95')} as p95, "
            f"{quantile('0.99')} as p99 from {MINUTES} where {{range}} group by 1 order by 1"),
    "9.3": ("Error rate, 5xx and 4xx", "series",
            f"select {HOURS} as hour, {ERRORS_5XX} as errors_5xx, {ERRORS_4XX} as errors_4xx from {MINUTES} "
            "where {range} group by 1 order by 1"),
    "9.4": ("Routes by requests", "rows",
            f"select http_method || ' ' || route as endpoint, sum(requests) as requests, "
            f"sum(requests) / {SPAN} as rps, {quantile('0.95')} as p95, {ERRORS_5XX} as errors_5xx, "
            f"{ERRORS_4XX} as errors_4xx from {MINUTES} where {{range}} group by route, http_method"),
    "9.5": ("Active requests", "series",
            f"select {HOURS} as hour, sum(seconds_sum) / 3600.0 as in_flight from {MINUTES} "
            "where {range} group by 1 order by 1"),
    "9.6": ("p95 latency", "scalar",
            f"select {quantile('0.95')} from {MINUTES} where {{range}}"),
}
FIXES = {
    "9.1": "the hour's requests / 3600: a range's first and last hour count only their part inside it",
    "9.4": "rps: requests over the seconds from the first to the end of the last minute with a request shown",
    "9.5": "the sink records no in-progress gauge: the mean requests in flight, seconds answering / 3600 "
           "(Little's law), by the hour the requests finished in",
}


def reference_sql(key: str, since: str | None = None, until: str | None = None) -> str:
    """Chart `key`'s reference for the minutes in [since, until) (SQL expressions; None: unbounded)."""
    bounds = [f"minute_start >= {since}" if since else "", f"minute_start < {until}" if until else ""]
    return REFERENCES[key][2].format(range=" and ".join(b for b in bounds if b) or "true")


def _views(key: str) -> str:
    """The same question on the view the charts read: its minutes (period_seconds 60) only."""
    sql = REFERENCES[key][2].format(range=f"{DEFAULT_RANGE.replace('minute_start', 'period_start')} "
                                          "and period_seconds = 60")
    return sql.replace(MINUTES, "analytics.api_request_stats").replace("minute_start", "period_start")


CHARTS: list[Chart] = [Chart(key, title, kind, REFERENCES[key][2].format(range=DEFAULT_RANGE), _views(key),
                             FIXES.get(key, ""))
                       for key, (title, kind, _) in REFERENCES.items()]

CHART_FILES: dict[str, str] = {  # key -> assets/charts/<file>.yaml
    "9.1": "Requests_per_second", "9.2": "Latency_p50_p95_p99", "9.3": "Error_rate_5xx_and_4xx",
    "9.4": "Routes_by_requests", "9.5": "Active_requests_mean_in_flight", "9.6": "p95_latency",
}
