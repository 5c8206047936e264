"""The Grafana dashboards as code (grafana-foundation-sdk, pinned in constraints.txt): writes
monitoring/grafana/dashboards/*.json, which Grafana's provisioning loads. Run after a change:

    .venv/bin/python monitoring/grafana/build_dashboards.py

tests/test_grafana.py checks offline that the JSON files are what this script builds, that
every query parses (promtool) and names only metrics the bundle's Prometheus has, and that the
datasource is the provisioned one (Grafana itself is not installable here).

The service's dashboard, "API Performance" (SERVICE_DASHBOARDS, in dashboards/service/: Grafana's file
provider reads subfolders too), reads the metrics of Sparklio's FastAPI service (sparklio-instrument, job
sparklio-api), not the exporter's, and is meant for Sparklio's own Grafana as well: it picks its Prometheus
with a datasource variable and uses Grafana's $__rate_interval, which promtool cannot parse.
tests/test_instrument_prometheus.py checks it: the committed JSON is what this builds, every query
parses with $__rate_interval replaced, and each answers with data from a real Prometheus scraping the
example app; its threshold lines are the alerts' of monitoring/rules/api.yml.
"""
from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphThresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="sparklio-prometheus")  # provisioning/datasources


def query(expr: str, legend: str = "") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend or "__auto")


def graph(title: str, unit: str, *queries: prometheus.Dataquery, width: int = 12) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).height(8).span(width)
    for ref, q in zip("ABCDEFGH", queries):
        panel = panel.with_target(q.ref_id(ref))
    return panel


def number(title: str, unit: str, expr: str, width: int = 6) -> stat.Panel:
    return stat.Panel().title(title).unit(unit).datasource(DATASOURCE).height(4).span(width).with_target(query(expr).ref_id("A"))


def sparklio_dashboard(title: str, uid: str) -> dashboard.Dashboard:
    """A dashboard of the bundle: its tag, a 30 s refresh, the last 6 hours in the browser's zone."""
    return (dashboard.Dashboard(title).uid(uid).tags(["sparklio"]).refresh("30s")
            .time("now-6h", "now").timezone("browser"))


def kpis() -> dashboard.Dashboard:
    """The analytics KPIs of the exporter (`sparklio-bi metrics serve`)."""
    return (sparklio_dashboard("Sparklio KPIs", "sparklio-kpis")
            .with_row(dashboard.Row("Now"))
            .with_panel(number("Agent failure ratio (5 min)", "percentunit", "sparklio:agent_failure_ratio:rate5m"))
            .with_panel(number("Still failing", "short", "sum(sparklio_agent_still_failing)"))
            .with_panel(number("Workflows running", "short", "sum(sparklio_workflows_running)"))
            .with_panel(number("Active users (last hour)", "short", "sum(sparklio_active_users_last_hour)"))
            .with_row(dashboard.Row("Agents"))
            .with_panel(graph("Executions per second by agent", "ops",
                              query("sum by (agent) (rate(sparklio_agent_executions_total[5m]))", "{{agent}}")))
            .with_panel(graph("Failure ratio by agent", "percentunit",
                              query("agent:sparklio_agent_failure_ratio:rate5m", "{{agent}}")))
            .with_panel(graph("Latency p95 by agent (last 5 min)", "s",
                              query("sparklio_agent_latency_p95_seconds", "{{agent}} p95"),
                              query("sparklio_agent_latency_p50_seconds", "{{agent}} p50")))
            .with_panel(graph("Executions per second by model", "ops",
                              query("sum by (model) (rate(sparklio_agent_executions_total[5m]))", "{{model}}")))
            .with_row(dashboard.Row("Workflows, router and assets"))
            .with_panel(graph("Workflow runs by status", "short", query("sum by (status) (sparklio_workflow_runs)",
                                                                         "{{status}}")))
            .with_panel(graph("Router decisions per second by intent", "ops",
                              query("sum by (intent) (rate(sparklio_router_decisions_total[5m]))", "{{intent}}")))
            .with_panel(graph("Context tokens shrunk", "percentunit",
                              query("1 - sum(rate(sparklio_context_tokens_after_total[1h])) "
                                    "/ sum(rate(sparklio_context_tokens_before_total[1h]))", "saved")))
            .with_panel(graph("Assets by review status", "short",
                              query("sum by (review_status) (sparklio_assets)", "{{review_status}}"))))


def host_and_database() -> dashboard.Dashboard:
    """The host (node_exporter), PostgreSQL, Superset's /health and the exporter's own health."""
    return (sparklio_dashboard("Sparklio host and database", "sparklio-host-db")
            .with_row(dashboard.Row("Up"))
            .with_panel(number("Superset /health", "bool_yes_no", "min(probe_success{job=\"superset-health\"})"))
            .with_panel(number("PostgreSQL", "bool_yes_no", "min(pg_up)"))
            .with_panel(number("KPI exporter", "bool_yes_no", "min(up{job=\"sparklio-exporter\"})"))
            .with_panel(number("Database size", "bytes", "sum(sparklio_database_size_bytes)"))
            .with_row(dashboard.Row("Host"))
            .with_panel(graph("CPU busy", "percentunit", query("instance:node_cpu_utilisation:ratio", "{{instance}}"),
                              width=8))
            .with_panel(graph("Memory used", "percentunit",
                              query("instance:node_memory_utilisation:ratio", "{{instance}}"), width=8))
            .with_panel(graph("Disk used", "percentunit",
                              query("instance:node_filesystem_utilisation:ratio", "{{mountpoint}}"), width=8))
            .with_row(dashboard.Row("Database"))
            .with_panel(graph("Largest tables", "bytes", query("topk(10, sparklio_table_size_bytes)", "{{table}}")))
            .with_panel(graph("Superset /health latency", "s",
                              query("probe_duration_seconds{job=\"superset-health\"}", "{{instance}}")))
            .with_row(dashboard.Row("Exporter"))
            .with_panel(graph("Round duration", "s", query("sparklio_exporter_round_duration_seconds"), width=8))
            .with_panel(graph("Query errors per minute", "short",
                              query("sum by (query) (increase(sparklio_exporter_query_errors_total[1m]))", "{{query}}"),
                              width=8))
            .with_panel(graph("Freshness", "s", query("sparklio_collector_sample_age_seconds", "collector sample age"),
                              query("max by (rollup) (sparklio_rollup_lag_seconds)", "rollup {{rollup}}"), width=8)))


DASHBOARDS = {"sparklio-kpis.json": kpis, "sparklio-host-db.json": host_and_database}


# --- API Performance: Sparklio's FastAPI service (sparklio-instrument) ------------------------------------

API_DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")  # the dashboard's variable
# the alerts' thresholds (monitoring/rules/api.yml), drawn on the panels that show the same quantity
API_5XX_RATIO = 0.05  # ApiHttp5xxRatioHigh
API_P95_SECONDS = 2.5  # ApiLatencyP95High
API_IN_PROGRESS = 50  # ApiSaturated
SERVED = 'endpoint!="/metrics"'  # Prometheus's own scrapes left out, as the rules do


def http_rate(matchers: str = "", by: str = "") -> str:
    """Requests per second over $__rate_interval, summed (by `by`), /metrics left out."""
    selector = ", ".join(filter(None, (SERVED, matchers)))
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate(sparklio_http_requests_total{{{selector}}}[$__rate_interval]))"


def latency(quantile: float, by: str = "endpoint") -> str:
    """The quantile of the request durations from the histogram's buckets, by route template."""
    grouping = ", ".join(filter(None, (by, "le")))
    return (f"histogram_quantile({quantile}, sum by ({grouping}) "
            f"(rate(sparklio_http_request_duration_seconds_bucket{{{SERVED}}}[$__rate_interval])))")


def threshold(value: float) -> dashboard.ThresholdsConfig:
    """Green below `value`, red from it: the alert's threshold."""
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=None, color="green"), Threshold(value=value, color="red")])


def api_graph(title: str, description: str, unit: str, *queries: prometheus.Dataquery, width: int = 12,
              alert_at: float | None = None) -> timeseries.Panel:
    panel = graph(title, unit, *queries, width=width).datasource(API_DATASOURCE).description(description).min(0)
    if alert_at is not None:  # a dashed line at the alert's threshold
        panel = panel.thresholds(threshold(alert_at)).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED))
    return panel


def api_number(title: str, description: str, unit: str, expr: str, alert_at: float | None = None) -> stat.Panel:
    panel = number(title, unit, expr).datasource(API_DATASOURCE).description(description)
    return panel.thresholds(threshold(alert_at)) if alert_at is not None else panel


def api_performance() -> dashboard.Dashboard:
    """Requests per second, p50/p95/p99, errors (5xx and 4xx apart) and requests in progress, by route template."""
    p95 = f"{API_P95_SECONDS:g} s"
    ratio_5xx = http_rate('status_code=~"5.."') + " / " + http_rate()
    ratio_4xx = http_rate('status_code=~"4.."') + " / " + http_rate()
    return (sparklio_dashboard("API Performance", "sparklio-api")
            .description("Sparklio's FastAPI service, from sparklio-instrument's metrics (job sparklio-api): by route "
                         "template, never the raw path; Prometheus's scrapes of /metrics left out. Alerts: "
                         "monitoring/rules/api.yml.")
            .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
                           .description("The Prometheus that scrapes the service"))
            .with_row(dashboard.Row("Now"))
            .with_panel(api_number("Requests per second", "All routes, over the rate interval.", "reqps",
                                   http_rate()))
            .with_panel(api_number("5xx ratio", "Share of requests answered 5xx (exceptions counted as 500). "
                                   "Red from 5 %, ApiHttp5xxRatioHigh's threshold (it fires after 5 minutes above, "
                                   "with at least 100 requests in them).", "percentunit",
                                   ratio_5xx, API_5XX_RATIO))
            .with_panel(api_number("p95 latency, all routes", f"95th percentile of request durations from the "
                                   f"histogram's buckets. Red from {p95}, ApiLatencyP95High's threshold (per route, "
                                   f"for 10 minutes).", "s", latency(0.95, by=""), API_P95_SECONDS))
            .with_panel(api_number("Requests in progress", f"Being answered now, every worker added up. Red from "
                                   f"{API_IN_PROGRESS}, ApiSaturated's threshold (per instance, for 5 minutes).",
                                   "short", f"sum(sparklio_http_requests_in_progress{{{SERVED}}})", API_IN_PROGRESS))
            .with_row(dashboard.Row("Traffic"))
            .with_panel(api_graph("Requests per second by route", "By method and route template; <unmatched> is "
                                  "every path no route matches (404s, scanners).", "reqps",
                                  query(http_rate(by="method, endpoint"), "{{method}} {{endpoint}}"), width=24))
            .with_row(dashboard.Row("Latency"))
            .with_panel(api_graph("p50 latency by route", "Median request duration by route template, from the "
                                  "histogram's buckets (interpolated within a bucket).", "s",
                                  query(latency(0.5), "{{endpoint}}"), width=8))
            .with_panel(api_graph("p95 latency by route", f"95th percentile by route template. The dashed line is "
                                  f"ApiLatencyP95High's {p95} (a bucket bound: above it, more than 5 % of the route's "
                                  f"requests took longer).", "s", query(latency(0.95), "{{endpoint}}"), width=8,
                                  alert_at=API_P95_SECONDS))
            .with_panel(api_graph("p99 latency by route", "99th percentile by route template; above 10 s it reads "
                                  "10 s (the highest bucket bound).", "s", query(latency(0.99), "{{endpoint}}"),
                                  width=8))
            .with_row(dashboard.Row("Errors"))
            .with_panel(api_graph("Error ratio, 5xx and 4xx apart", "Share of requests answered 5xx (the service "
                                  "failed) and 4xx (the client asked wrong: 404, 405, 422; 499 a client gone). The "
                                  "dashed line is ApiHttp5xxRatioHigh's 5 %.", "percentunit",
                                  query(ratio_5xx, "5xx"),
                                  query(ratio_4xx, "4xx"),
                                  alert_at=API_5XX_RATIO))
            .with_panel(api_graph("Errors per second by route and status", "4xx and 5xx answers by route template "
                                  "and status code.", "reqps",
                                  query(http_rate('status_code=~"4..|5.."', by="endpoint, status_code"),
                                        "{{status_code}} {{endpoint}}")))
            .with_row(dashboard.Row("Saturation"))
            .with_panel(api_graph("Requests in progress by route", "Being answered now, by route template (a "
                                  "long-running route holds its requests here).", "short",
                                  query(f"sum by (endpoint) (sparklio_http_requests_in_progress{{{SERVED}}})",
                                        "{{endpoint}}")))
            .with_panel(api_graph("Requests in progress per instance", f"Every worker of an instance added up. The "
                                  f"dashed line is ApiSaturated's {API_IN_PROGRESS}: by Little's law, requests per "
                                  f"second times seconds each, ten times a busy normal.", "short",
                                  query(f"sum by (instance) (sparklio_http_requests_in_progress{{{SERVED}}})",
                                        "{{instance}}"), alert_at=API_IN_PROGRESS)))


SERVICE_DASHBOARDS = {"service/sparklio-api.json": api_performance}


def render(build) -> str:
    """The dashboard's JSON, its panels numbered 1, 2, ... in order (the SDK leaves every id 0)."""
    model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    for number_, panel in enumerate(model["panels"], start=1):
        panel["id"] = number_
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name, build in {**DASHBOARDS, **SERVICE_DASHBOARDS}.items():
        (OUT / name).parent.mkdir(parents=True, exist_ok=True)
        (OUT / name).write_text(render(build))


if __name__ == "__main__":
    main()
