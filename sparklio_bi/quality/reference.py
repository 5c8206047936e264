"""The charts of ../shared/spec/dashboards.md (29 on 8 dashboards; the bundle's own after them):
the user's reference SQL (on the source tables, with the documented fixes applied) next to the
query the chart runs on the views.

`kind` says how two results are compared:
- "rows": same rows, keyed by the first column (order ignored);
- "series": same rows in the same order;
- "top": a top-N list: same ranking values rank by rank, each key's values equal, keys above
  the cut-off present (rows tied on the ranking value may come in any order);
- "scalar": one number.
"""
from __future__ import annotations

import math
import re

from sparklio_bi.config import PROJECT_ROOT
from sparklio_bi.postgres import database
from sparklio_bi.quality import reference_api, reference_host
from sparklio_bi.quality.chart_spec import W7, W30, Chart

CHARTS = [
    Chart("1.1", "Daily workflow runs", "series",
          """select d::date as date, count(w.id) as workflow_count
             from generate_series(current_date - 29, current_date, interval '1 day') d
             left join workflows w on date(w.created_at) = d::date
             group by d order by d""",
          f"""select day, sum(workflow_count) from analytics.workflow_daily
              where day >= {W30} group by day order by day""",
          fix="last 30 calendar days ascending, empty days as 0 (spec: 30 latest days with data, DESC)"),
    Chart("1.2", "Workflow status distribution", "rows",
          f"select status, count(*) from workflows where created_at >= {W7} group by status",
          f"select status, count(*) from analytics.workflows where created_at >= {W7} group by status"),
    Chart("1.3", "Average execution time", "scalar",
          f"""select avg(extract(epoch from (completed_at - created_at))) from workflows
              where status = 'completed' and created_at >= {W7}""",
          f"""select avg(duration_seconds) from analytics.workflows
              where status = 'completed' and created_at >= {W7}"""),
    Chart("2.1", "Executions per agent", "rows",
          f"select agent_name, count(*) from agent_logs where created_at >= {W7} group by agent_name",
          f"select agent_name, count(*) from analytics.agent_logs where created_at >= {W7} group by agent_name"),
    Chart("2.2", "Average latency per agent", "rows",
          f"select agent_name, avg(latency_ms) from agent_logs where created_at >= {W7} group by agent_name",
          f"""select agent_name, avg(latency_ms) from analytics.agent_logs
              where created_at >= {W7} group by agent_name"""),
    Chart("2.3", "Success rate per agent", "rows",
          f"""select agent_name, count(*) as total,
                     sum(case when status = 'success' then 1 else 0 end) as success,
                     round(100.0 * sum(case when status = 'success' then 1 else 0 end) / count(*), 2)
              from agent_logs where created_at >= {W7} group by agent_name""",
          f"""select agent_name, count(*), sum(is_success), round(100.0 * sum(is_success) / count(*), 2)
              from analytics.agent_logs where created_at >= {W7} group by agent_name"""),
    Chart("2.4", "Top 5 agents by failures", "top",
          f"""select agent_name, count(*) as failures, sum(case when status = 'error' then 1 else 0 end)
              from agent_logs where status in ('error', 'recovered') and created_at >= {W7}
              group by agent_name order by failures desc limit 5""",
          f"""select agent_name, count(*) as failures, sum(1 - is_recovered) from analytics.errors
              where created_at >= {W7} group by agent_name order by failures desc limit 5""",
          fix="ranks by every failure, recovered or not; the second number is the spec's status = 'error'"),
    Chart("3.1", "Intent distribution", "rows",
          f"select intent_type, count(*) from router_logs where created_at >= {W7} group by intent_type",
          f"""select intent_type, count(*) from analytics.router_logs
              where created_at >= {W7} group by intent_type"""),
    Chart("3.2", "Selected model distribution", "rows",
          f"select selected_model, count(*) from router_logs where created_at >= {W7} group by selected_model",
          f"""select selected_model, count(*) from analytics.router_logs
              where created_at >= {W7} group by selected_model"""),
    Chart("3.3", "Risk level distribution", "rows",
          f"select risk_level, count(*) from router_logs where created_at >= {W7} group by risk_level",
          f"""select risk_level, count(*) from analytics.router_logs
              where created_at >= {W7} group by risk_level"""),
    Chart("3.4", "Context minimization effect", "series",
          f"""select date(created_at) as date, avg(context_size_before), avg(context_size_after)
              from router_logs where created_at >= {W30} group by date(created_at) order by date""",
          f"""select date_trunc('day', created_at), avg(context_size_before), avg(context_size_after)
              from analytics.router_logs where created_at >= {W30} group by 1 order by 1"""),
    Chart("4.1", "Projects per brand (top 10)", "top",
          """select b.name as brand_name, count(p.id) as project_count from brands b
             left join projects p on b.id = p.brand_id group by b.name order by project_count desc limit 10""",
          """select brand_name, count(project_id) from analytics.brands
             group by brand_name order by 2 desc limit 10"""),
    Chart("4.2", "Assets per brand, last 30 days (top 10)", "top",
          f"""select b.name as brand_name, count(a.id) as asset_count from brands b
              left join projects p on b.id = p.brand_id left join assets a on p.id = a.project_id
              where a.created_at >= {W30} group by b.name order by asset_count desc limit 10""",
          f"""select brand_name, count(*) from analytics.assets where created_at >= {W30}
              group by brand_name order by 2 desc limit 10"""),
    Chart("4.3", "Average workflow time per brand", "rows",
          """select b.name, avg(extract(epoch from (w.completed_at - w.created_at))) from brands b
             join projects p on b.id = p.brand_id join workflows w on p.id = w.project_id
             where w.status = 'completed' group by b.name""",
          """select brand_name, avg(duration_seconds) from analytics.workflows
             where status = 'completed' group by brand_name"""),
    Chart("5.1", "PostgreSQL connections", "scalar",
          "select count(*) from pg_stat_activity",
          """select sum(value) from analytics.system_metrics where metric = 'pg_connections'
             and sampled_at = (select max(sampled_at) from analytics.system_metrics)""",
          fix="sampled into analytics.system_samples over time (by state); the latest sample is compared"),
    Chart("5.2", "PostgreSQL database size", "scalar",
          "select pg_database_size(current_database())",
          "select max(size_bytes) from analytics.database_size",
          fix="the current database instead of a hard-coded name; bytes, formatted by the chart"),
    Chart("5.3", "Top 10 slowest queries", "series",
          """select substring(query, 1, 50) as query_preview, mean_exec_time, calls from pg_stat_statements
             order by mean_exec_time desc limit 10""",
          """select query_preview, mean_exec_time_ms, calls from analytics.slow_queries
             order by mean_exec_time_ms desc limit 10"""),
    Chart("5.4", "Size per table", "series",
          """select tablename, pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) as size
             from pg_tables where schemaname = 'public'
             order by pg_total_relation_size(schemaname||'.'||tablename) desc, tablename limit 10""",
          """select table_name, pg_size_pretty(sum(total_bytes)) from analytics.table_sizes
             group by table_name order by sum(total_bytes) desc, table_name limit 10""",
          fix="bytes (plottable), formatted by the chart; compared here through pg_size_pretty"),
    Chart("6.1", "Daily active users", "series",
          f"""select date(created_at) as date, count(distinct user_id) from projects
              where created_at >= {W30} group by date(created_at) order by date""",
          f"""select date_trunc('day', created_at), count(distinct user_id) from analytics.projects
              where created_at >= {W30} group by 1 order by 1"""),
    Chart("6.2", "Projects per user (top 10)", "top",
          """select u.email, count(p.id) as project_count from users u left join projects p on u.id = p.user_id
             group by u.email order by project_count desc limit 10""",
          "select email, sum(project_count) from analytics.users group by email order by 2 desc limit 10"),
    Chart("6.3", "New signups", "series",
          """select date(created_at) as date, count(*) from users
             where created_at >= now() - interval '90 days' group by date(created_at) order by date""",
          """select date_trunc('day', created_at), count(*) from analytics.users
             where created_at >= now() - interval '90 days' group by 1 order by 1"""),
    Chart("7.1", "Asset type distribution", "rows",
          f"select asset_type, count(*) from assets where created_at >= {W30} group by asset_type",
          f"select asset_type, count(*) from analytics.assets where created_at >= {W30} group by asset_type"),
    Chart("7.2", "Assets per day", "series",
          f"""select date(created_at) as date, count(*) from assets where created_at >= {W30}
              group by date(created_at) order by date""",
          f"""select date_trunc('day', created_at), count(*) from analytics.assets
              where created_at >= {W30} group by 1 order by 1"""),
    Chart("7.3", "Review approval rate", "scalar",
          f"""select round(100.0 * sum(case when review_status = 'approved' then 1 else 0 end) / count(*), 2)
              from assets where created_at >= {W7} and review_status is not null""",
          f"""select round(100.0 * sum(is_approved) / nullif(sum(is_reviewed), 0), 2)
              from analytics.assets where created_at >= {W7}"""),
    Chart("7.4", "Average review score", "series",
          f"""select date(created_at) as date, avg(review_score) from assets
              where created_at >= {W30} and review_score is not null group by date(created_at) order by date""",
          f"""select date_trunc('day', created_at), avg(review_score) from analytics.assets
              where created_at >= {W30} group by 1 having count(review_score) > 0 order by 1"""),
    Chart("8.1", "Failures per day", "series",
          f"""select date(created_at) as date, count(*), sum(case when status = 'error' then 1 else 0 end)
              from agent_logs where status in ('error', 'recovered') and created_at >= {W30}
              group by date(created_at) order by date""",
          f"""select date_trunc('day', created_at), count(*), sum(1 - is_recovered) from analytics.errors
              where created_at >= {W30} group by 1 order by 1""",
          fix="every failure, recovered or not; the second series is the spec's status = 'error'"),
    Chart("8.2", "Error type distribution", "rows",
          f"""select error_type, count(*) from agent_logs
              where status in ('error', 'recovered') and created_at >= {W7} group by error_type""",
          f"select error_type, count(*) from analytics.errors where created_at >= {W7} group by error_type",
          fix="every failure, recovered or not"),
    Chart("8.3", "Latest 20 failures", "series",
          """select created_at, agent_name, error_type, substring(error_message, 1, 100) as error_preview
             from agent_logs where status in ('error', 'recovered') order by created_at desc, id desc limit 20""",
          """select created_at, agent_name, error_type, error_preview from analytics.errors
             order by created_at desc, agent_log_id desc limit 20""",
          fix="every failure, recovered or not, with its status"),
    Chart("8.4", "Error recovery time per agent", "rows",
          f"""select agent_name, avg(extract(epoch from (recovered_at - error_at))) from agent_logs
              where status = 'recovered' and created_at >= {W7} group by agent_name""",
          f"""select agent_name, avg(recovery_seconds) from analytics.errors
              where is_recovered = 1 and created_at >= {W7} group by agent_name"""),
]

CHART_FILES = {  # spec key -> assets/charts/<file>.yaml
    "1.1": "Daily_workflow_runs", "1.2": "Workflow_status_distribution",
    "1.3": "Average_workflow_execution_time", "2.1": "Executions_per_agent",
    "2.2": "Average_latency_per_agent", "2.3": "Success_rate_per_agent",
    "2.4": "Top_5_agents_by_failures_all_vs_still_failing", "3.1": "Intent_distribution",
    "3.2": "Selected_model_distribution", "3.3": "Risk_level_distribution",
    "3.4": "Context_minimization_effect", "4.1": "Projects_per_brand_top_10",
    "4.2": "Assets_generated_per_brand_top_10", "4.3": "Average_workflow_time_per_brand",
    "5.1": "PostgreSQL_connections", "5.2": "PostgreSQL_database_size", "5.3": "Top_10_slowest_queries",
    "5.4": "Size_per_table_top_10", "6.1": "Daily_active_users", "6.2": "Projects_per_user_top_10",
    "6.3": "New_signups", "7.1": "Asset_type_distribution", "7.2": "Assets_per_day",
    "7.3": "Review_approval_rate", "7.4": "Average_review_score",
    "8.1": "Failures_per_day_all_vs_still_failing", "8.2": "Failure_type_distribution_all_failures",
    "8.3": "Latest_20_failures_recovered_or_not", "8.4": "Recovery_time_per_agent_recovered_failures",
}

CHARTS += reference_host.CHARTS + reference_api.CHARTS
CHART_FILES.update({**reference_host.CHART_FILES, **reference_api.CHART_FILES})


def chart_titles() -> dict[str, str]:
    """Spec key ("1.1") -> the chart's title in assets/."""
    import yaml

    charts = PROJECT_ROOT / "assets" / "charts"
    return {key: yaml.safe_load((charts / f"{stem}.yaml").read_text())["slice_name"]
            for key, stem in CHART_FILES.items()}


DASHBOARDS = {  # spec number -> the dashboard's title in assets/
    "1": "Workflow Execution Overview", "2": "Agent Performance", "3": "SmartRouter Analysis",
    "4": "Brand Usage", "5": "System Resources", "6": "User Activity", "7": "Asset Generation",
    "8": "Errors & Exceptions",
    **reference_host.DASHBOARDS, **reference_api.DASHBOARDS,
}


def charts_per_dashboard() -> dict[str, int]:
    """Dashboard title -> how many of CHARTS it shows (a chart's key starts with its dashboard's number)."""
    return {title: sum(c.key.split(".")[0] == number for c in CHARTS) for number, title in DASHBOARDS.items()}


# every chart has a file, every key is one dashboard's; the spec's own count (29) is the user's
assert sorted(CHART_FILES) == sorted(c.key for c in CHARTS) and len({c.key for c in CHARTS}) == len(CHARTS)
assert all(c.key.split(".")[0] in DASHBOARDS for c in CHARTS)


def comparable(value):
    """Numbers as floats, midnight timestamps and dates as ISO dates, other timestamps as ISO."""
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def rows(result) -> list[tuple]:
    return [tuple(comparable(v) for v in row) for row in result]


def same(a, b) -> bool:
    """Equal, with floats equal to 1e-9 relative (numeric vs double precision averages)."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def compare(kind: str, expected: list[tuple], actual: list[tuple]) -> None:
    """Assert two results agree the way `kind` says."""
    expected, actual = rows(expected), rows(actual)
    assert expected, "the reference query returned no rows: the data cannot show this chart"
    if kind == "rows":
        got, want = {r[0]: r[1:] for r in actual}, {r[0]: r[1:] for r in expected}
        assert same(got, want), f"expected {want}, got {got}"
    elif kind in ("series", "scalar"):
        assert same(actual, expected), f"expected {expected}, got {actual}"
    elif kind == "top":
        # the ranking value (first after the key) rank by rank; rows tied on it may come in any
        # order, so the other values are compared key by key
        assert same([r[1] for r in actual], [r[1] for r in expected]), "ranking values differ rank by rank"
        want, got = {r[0]: r[1:] for r in expected}, {r[0]: r[1:] for r in actual}
        assert all(same(got[k], want[k]) for k in got.keys() & want.keys()), "a key's values differ"
        cutoff = expected[-1][1]
        above = {r[0] for r in expected if not same(r[1], cutoff)}
        assert above <= got.keys(), "keys above the cut-off differ"
    else:
        raise ValueError(kind)


# --- a chart's data from Superset's API, next to its reference SQL -----------------------------

# A line of samples, not one reading: test_superset compares it with the reference on a minute
# the test samples itself (the live minutes keep moving).
VOLATILE = {"5.1"}
# Rows that are the server's statement statistics: every query that reads them (the chart's, the
# reference's, the benchmark's timed runs just before) changes its own row. The test suite
# compares 5.3 right after a quiet moment (test_superset); the benchmark, having just run it many
# times, cannot, and reports it as "self-observing" instead of equal.
SELF_OBSERVING = {"5.3"}
# Chart -> why the benchmark does not compare it with its reference (what it reports instead of equal)
NOT_COMPARED = {**dict.fromkeys(VOLATILE, "volatile"), **dict.fromkeys(SELF_OBSERVING, "self-observing")}
PERCENT_AS_FRACTION = {"7.3"}  # the chart holds 0.7266 and shows it as 72.66% (d3 format .2%)
TEMPORAL = 2  # superset's GenericDataType.TEMPORAL in a result's coltypes


def chart_rows(payload: dict) -> list[tuple]:
    """The chart's data (a /api/v1/chart/<id>/data answer) as tuples in column order,
    epoch-millisecond times as UTC datetimes."""
    from datetime import datetime, timezone

    result = payload["result"][0]
    names, types = result["colnames"], result["coltypes"]
    out = []
    for record in result["data"]:
        row = []
        for name, kind in zip(names, types):
            value = record[name]
            if kind == TEMPORAL and isinstance(value, (int, float)):
                value = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
            row.append(value)
        out.append(tuple(row))
    return out


def in_metric_order(payload: dict, rows: list[tuple], chart_file: str) -> list[tuple]:
    """Columns as the chart lists them (x axis or groupby first, then its metrics in order):
    Superset's pivot sorts metric columns by name."""
    import yaml

    path = PROJECT_ROOT / "assets" / "charts" / f"{chart_file}.yaml"
    params = yaml.safe_load(path.read_text())["params"]
    metrics = [m if isinstance(m, str) else m.get("label") for m in params.get("metrics") or []]
    names = payload["result"][0]["colnames"]
    if not set(metrics) <= set(names):
        return rows
    order = [i for i, n in enumerate(names) if n not in metrics] + [names.index(m) for m in metrics]
    return [tuple(row[i] for i in order) for row in rows]


def without_zero_filled_days(actual: list[tuple], expected: list[tuple]) -> list[tuple]:
    """Superset's line charts show days without rows as 0, where SQL has no row at all."""
    present = {comparable(row[0]) for row in expected}
    return [row for row in actual
            if comparable(row[0]) in present or any(v not in (0, None) for v in row[1:])]


# Superset's end bound, as it writes it or as the SQL mutator makes it a literal (literal_time_bounds)
_FILTER_END = re.compile(r"< (?:TO_TIMESTAMP\('([0-9-]+ [0-9:.]+)', 'YYYY-MM-DD HH24:MI:SS\.US'\)"
                         r"|TIMESTAMPTZ '([0-9-]+ [0-9:.]+)')")


def at_the_charts_now(sql: str, payload: dict) -> str:
    """The reference SQL with now() at the end of the time filter Superset wrote for the chart
    (its "now"; the chart data answer carries its SQL), when it has one: both then ask of the
    same instant."""
    query = (payload.get("result") or [{}])[0].get("query") or ""
    found = _FILTER_END.search(query)
    return sql.replace("now()", f"'{found[1] or found[2]}'::timestamptz") if found else sql


def run_reference(url: str, sql: str, search_path: str = "public") -> list[tuple]:
    """A reference query's rows, run on `url` with `search_path` (the source tables' schema)."""
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"set search_path = {search_path}")
        cur.execute(sql)
        return cur.fetchall()


def compare_chart(chart: Chart, expected: list[tuple], payload: dict, url: str) -> None:
    """Assert the chart's data through the API (`payload`) equals its reference SQL's rows
    (`expected`); `url` is any connection (5.4 formats sizes with pg_size_pretty there).
    VOLATILE charts are not compared here."""
    if chart.key in VOLATILE:
        return
    actual = in_metric_order(payload, chart_rows(payload), CHART_FILES[chart.key])
    width = len(expected[0]) if expected else 0
    actual = [row[:width] for row in actual]
    if chart.key in PERCENT_AS_FRACTION:
        actual = [tuple(100 * v for v in row) for row in actual]
    if chart.kind == "series":
        actual = without_zero_filled_days(actual, expected)
    if chart.key == "5.2":
        assert expected and abs(actual[0][0] - expected[0][0]) <= 0.01 * expected[0][0], \
            f"expected about {expected}, got {actual}"
    elif chart.key == "5.4":
        with database.connect(url) as conn, conn.cursor() as cur:
            pretty = []
            for name, size in actual:
                cur.execute("select pg_size_pretty(%s::bigint)", (int(size),))
                pretty.append((name, cur.fetchone()[0]))
        compare(chart.kind, expected, pretty)
    else:
        compare(chart.kind, expected, actual)
