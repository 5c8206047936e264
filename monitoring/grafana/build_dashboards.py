"""The Grafana dashboards as code (grafana-foundation-sdk, pinned in constraints.txt): writes
monitoring/grafana/dashboards/*.json, which Grafana's provisioning loads. Run after a change:

    .venv/bin/python monitoring/grafana/build_dashboards.py

tests/test_grafana.py checks offline that the JSON files are what this script builds, that
every query parses (promtool, the variables substituted first) and names only metrics the bundle's
Prometheus has, and that the datasource variable defaults to the provisioned one (Grafana itself
is not installable here).

The bundle's two dashboards pick their Prometheus with a datasource variable (the provisioned one
by default), filter by job and instance variables, rate over Grafana's $__rate_interval, draw the
alerts' thresholds (read from monitoring/rules/sparklio.yml, so a changed threshold moves the line),
describe every panel and count the alerts firing (Prometheus's ALERTS).

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
import re
from functools import cache
from pathlib import Path

import yaml
from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphThresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
)

OUT = Path(__file__).resolve().parent / "dashboards"
RULES = Path(__file__).resolve().parent.parent / "rules" / "sparklio.yml"
PROVISIONED_UID = "sparklio-prometheus"  # provisioning/datasources/prometheus.yml: the variable's default
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")  # the dashboard's variable
TARGET = 'job=~"$job", instance=~"$instance"'  # the job and instance variables
UP_DOWN = [ValueMap(options={"0": ValueMappingResult(text="down", color="red", index=0),
                             "1": ValueMappingResult(text="up", color="green", index=1)})]
FIRING = 'ALERTS{alertstate="firing", alertname!="Watchdog"}'  # the Watchdog always fires


@cache
def alert_threshold(alert: str) -> float:
    """The `> N` of an alert of monitoring/rules/sparklio.yml: the line its panel draws."""
    rules = {rule["alert"]: rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
             if "alert" in rule}
    return float(re.search(r"> ([0-9.]+)", rules[alert]["expr"]).group(1))


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


def label_variable(name: str, label: str, source: str) -> dashboard.QueryVariable:
    """A multi-value variable of `label`'s values on the `source` series, All (any value) by default."""
    return (dashboard.QueryVariable(name).label(name.capitalize()).datasource(DATASOURCE)
            .query(f"label_values({source}, {label})").refresh(VariableRefresh.ON_DASHBOARD_LOAD)
            .multi(True).include_all(True).all_value(".+").current(VariableOption(text="All", value="$__all")))


def with_variables(board: dashboard.Dashboard, series: str) -> dashboard.Dashboard:
    """The datasource (the provisioned Prometheus by default), then job and instance of `series`."""
    return (board.with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
                                .current(VariableOption(text="Prometheus", value=PROVISIONED_UID)))
            .with_variable(label_variable("job", "job", series))
            .with_variable(label_variable("instance", "instance", f'{series}{{job=~"$job"}}')))


def alerts_firing(width: int) -> stat.Panel:
    return described_number("Alerts firing", "Alerts firing now in this Prometheus (the ALERTS series), the "
                            "Watchdog left out; Alertmanager's UI shows which and who was told.", "short",
                            f"count({FIRING}) or vector(0)", alert_at=1).span(width)


def rate(metric: str, by: str) -> str:
    return f"sum by ({by}) (rate({metric}{{{TARGET}}}[$__rate_interval]))"


def kpis() -> dashboard.Dashboard:
    """The analytics KPIs of the exporter (`sparklio-bi metrics serve`)."""
    failing, spike, slow = (alert_threshold(name) for name in ("AgentFailureRatioHigh", "AgentFailureSpike",
                                                               "AgentLatencyP95High"))
    return (with_variables(sparklio_dashboard("Sparklio KPIs", "sparklio-kpis"), "sparklio_exporter_rounds_total")
            .description("The analytics KPIs from the KPI exporter (job sparklio-exporter, `sparklio-bi metrics "
                         "serve`), read from the same views as Superset's charts. Alerts: monitoring/rules/sparklio.yml.")
            .with_row(dashboard.Row("Now"))
            .with_panel(described_number("Agent failure ratio (5 min)", f"Failed executions over all executions in "
                                         f"the last 5 minutes, the recording rule AgentFailureRatioHigh reads; red from "
                                         f"{failing:.0%}, its threshold (every exporter: not filtered).",
                                         "percentunit", "sparklio:agent_failure_ratio:rate5m", failing).span(5))
            .with_panel(described_number("Still failing", "Failed executions not recovered since.", "short",
                                         f"sum(sparklio_agent_still_failing{{{TARGET}}})").span(5))
            .with_panel(described_number("Workflows running", "Workflow runs in status running now.", "short",
                                         f"sum(sparklio_workflows_running{{{TARGET}}})").span(5))
            .with_panel(described_number("Active users (last hour)", "Users who created a project in the last hour.",
                                         "short", f"sum(sparklio_active_users_last_hour{{{TARGET}}})").span(5))
            .with_panel(alerts_firing(4))
            .with_row(dashboard.Row("Agents"))
            .with_panel(described_graph("Executions per second by agent", "Agent executions per second, by agent.",
                                        "ops", query(rate("sparklio_agent_executions_total", "agent"), "{{agent}}")))
            .with_panel(described_graph("Failure ratio by agent", f"Each agent's failed share over 5 minutes; the "
                                        f"dashed line is AgentFailureSpike's {spike:.0%} (with 10+ executions, for 5 "
                                        f"minutes).", "percentunit",
                                        query("agent:sparklio_agent_failure_ratio:rate5m", "{{agent}}"), alert_at=spike))
            .with_panel(described_graph("Latency p95 by agent (last 5 min)", f"p50 and p95 of the executions started "
                                        f"in the last 5 minutes; the dashed line is AgentLatencyP95High's {slow:g} s "
                                        f"(with 20+ executions, for 10 minutes).", "s",
                                        query(f"sparklio_agent_latency_p95_seconds{{{TARGET}}}", "{{agent}} p95"),
                                        query(f"sparklio_agent_latency_p50_seconds{{{TARGET}}}", "{{agent}} p50"),
                                        alert_at=slow))
            .with_panel(described_graph("Executions per second by model", "A slow or failing provider shows here "
                                        "on every agent calling it.", "ops",
                                        query(rate("sparklio_agent_executions_total", "model"), "{{model}}")))
            .with_row(dashboard.Row("Workflows, router and assets"))
            .with_panel(described_graph("Workflow runs by status", "Workflow runs by their status now.", "short",
                                        query(f"sum by (status) (sparklio_workflow_runs{{{TARGET}}})", "{{status}}")))
            .with_panel(described_graph("Router decisions per second by intent", "SmartRouter decisions per second.",
                                        "ops", query(rate("sparklio_router_decisions_total", "intent"), "{{intent}}")))
            .with_panel(described_graph("Context tokens shrunk", "Share of context tokens the minimisation removed "
                                        "before the model call.", "percentunit",
                                        query(f"1 - sum(rate(sparklio_context_tokens_after_total{{{TARGET}}}"
                                              f"[$__rate_interval])) / sum(rate(sparklio_context_tokens_before_total"
                                              f"{{{TARGET}}}[$__rate_interval]))", "saved")))
            .with_panel(described_graph("Assets by review status", "Generated assets by review status "
                                        "(unreviewed while not reviewed).", "short",
                                        query(f"sum by (review_status) (sparklio_assets{{{TARGET}}})",
                                              "{{review_status}}"))))


def up_number(title: str, description: str, expr: str) -> stat.Panel:
    return described_number(title, description, "none", expr).mappings(UP_DOWN).span(4)


def host_and_database() -> dashboard.Dashboard:
    """The host (node_exporter), PostgreSQL, Superset's /health and the exporter's own health."""
    cpu, memory, disk, connections, stale, lag = (alert_threshold(name) for name in (
        "HostHighCpu", "HostHighMemory", "HostDiskFull", "PostgresConnectionsHigh", "CollectorStale", "RollupLagging"))
    return (with_variables(sparklio_dashboard("Sparklio host and database", "sparklio-host-db"), "up")
            .description("The host (node_exporter), PostgreSQL (postgres_exporter), Superset's /health (blackbox "
                         "exporter) and the KPI exporter's own health. Alerts: monitoring/rules/sparklio.yml.")
            .with_row(dashboard.Row("Up"))
            .with_panel(up_number("Superset /health", "The blackbox exporter's probe of Superset's /health "
                                  "(SupersetDown after 1 minute down).", 'min(probe_success{job="superset-health"})'))
            .with_panel(up_number("PostgreSQL", "postgres_exporter reaches PostgreSQL (PostgresDown after 1 minute).",
                                  "min(pg_up)"))
            .with_panel(up_number("KPI exporter", "Prometheus scrapes the KPI exporter (ExporterDown after 1 minute).",
                                  'min(up{job="sparklio-exporter"})'))
            .with_panel(described_number("Targets down", "Scrape targets of the chosen jobs and instances that do not "
                                         "answer (TargetDown after 2 minutes).", "short",
                                         f"count(up{{{TARGET}}} == 0) or vector(0)", alert_at=1).span(4))
            .with_panel(alerts_firing(4))
            .with_panel(described_number("Database size", "The analytics database on disk.", "bytes",
                                         "sum(sparklio_database_size_bytes)").span(4))
            .with_row(dashboard.Row("Host"))
            .with_panel(described_graph("CPU busy", f"Share of CPU time not idle; the dashed line is HostHighCpu's "
                                        f"{cpu:.0%}.", "percentunit",
                                        query('instance:node_cpu_utilisation:ratio{instance=~"$instance"}',
                                              "{{instance}}"), width=8, alert_at=cpu).max(1))
            .with_panel(described_graph("Memory used", f"Share of memory not available; the dashed line is "
                                        f"HostHighMemory's {memory:.0%}.", "percentunit",
                                        query('instance:node_memory_utilisation:ratio{instance=~"$instance"}',
                                              "{{instance}}"), width=8, alert_at=memory).max(1))
            .with_panel(described_graph("Disk used", f"Share of each filesystem used; the dashed line is "
                                        f"HostDiskFull's {disk:.0%} (HostDiskFillingUp warns a day ahead).",
                                        "percentunit",
                                        query('instance:node_filesystem_utilisation:ratio{instance=~"$instance"}',
                                              "{{instance}} {{mountpoint}}"), width=8, alert_at=disk).max(1))
            .with_row(dashboard.Row("Database"))
            .with_panel(described_graph("Largest tables", "The ten largest application tables with their indexes "
                                        "and toast.", "bytes", query("topk(10, sparklio_table_size_bytes)", "{{table}}"),
                                        width=8))
            .with_panel(described_graph("PostgreSQL connections used", f"Connections over max_connections; the "
                                        f"dashed line is PostgresConnectionsHigh's {connections:.0%}.", "percentunit",
                                        query("sum by (instance) (pg_stat_activity_count) / on (instance) max by "
                                              "(instance) (pg_settings_max_connections)", "{{instance}}"),
                                        width=8, alert_at=connections).max(1))
            .with_panel(described_graph("Superset /health latency", "How long the blackbox probe of /health took.",
                                        "s", query('probe_duration_seconds{job="superset-health"}', "{{instance}}"),
                                        width=8))
            .with_row(dashboard.Row("Exporter"))
            .with_panel(described_graph("Round duration", "Wall time of the KPI exporter's last round of queries.", "s",
                                        query("sparklio_exporter_round_duration_seconds"), width=8))
            .with_panel(described_graph("Query errors", "Failed queries of the exporter's rounds over the rate "
                                        "interval, by query (its log has the error text).", "short",
                                        query("sum by (query) (increase(sparklio_exporter_query_errors_total"
                                              "[$__rate_interval]))", "{{query}}"), width=8))
            .with_panel(described_graph("Freshness", f"Age of the collector's newest sample and of each rollup's "
                                        f"refresh; the dashed line is CollectorStale's {stale:g} s (RollupLagging "
                                        f"fires above {lag:g} s).", "s",
                                        query("sparklio_collector_sample_age_seconds", "collector sample age"),
                                        query("max by (rollup) (sparklio_rollup_lag_seconds)", "rollup {{rollup}}"),
                                        width=8, alert_at=stale)))


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


def described_graph(title: str, description: str, unit: str, *queries: prometheus.Dataquery, width: int = 12,
              alert_at: float | None = None) -> timeseries.Panel:
    panel = graph(title, unit, *queries, width=width).datasource(API_DATASOURCE).description(description).min(0)
    if alert_at is not None:  # a dashed line at the alert's threshold
        panel = panel.thresholds(threshold(alert_at)).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED))
    return panel


def described_number(title: str, description: str, unit: str, expr: str, alert_at: float | None = None) -> stat.Panel:
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
            .with_panel(described_number("Requests per second", "All routes, over the rate interval.", "reqps",
                                   http_rate()))
            .with_panel(described_number("5xx ratio", "Share of requests answered 5xx (exceptions counted as 500). "
                                   "Red from 5 %, ApiHttp5xxRatioHigh's threshold (it fires after 5 minutes above, "
                                   "with at least 100 requests in them).", "percentunit",
                                   ratio_5xx, API_5XX_RATIO))
            .with_panel(described_number("p95 latency, all routes", f"95th percentile of request durations from the "
                                   f"histogram's buckets. Red from {p95}, ApiLatencyP95High's threshold (per route, "
                                   f"for 10 minutes).", "s", latency(0.95, by=""), API_P95_SECONDS))
            .with_panel(described_number("Requests in progress", f"Being answered now, every worker added up. Red from "
                                   f"{API_IN_PROGRESS}, ApiSaturated's threshold (per instance, for 5 minutes).",
                                   "short", f"sum(sparklio_http_requests_in_progress{{{SERVED}}})", API_IN_PROGRESS))
            .with_row(dashboard.Row("Traffic"))
            .with_panel(described_graph("Requests per second by route", "By method and route template; <unmatched> is "
                                  "every path no route matches (404s, scanners).", "reqps",
                                  query(http_rate(by="method, endpoint"), "{{method}} {{endpoint}}"), width=24))
            .with_row(dashboard.Row("Latency"))
            .with_panel(described_graph("p50 latency by route", "Median request duration by route template, from the "
                                  "histogram's buckets (interpolated within a bucket).", "s",
                                  query(latency(0.5), "{{endpoint}}"), width=8))
            .with_panel(described_graph("p95 latency by route", f"95th percentile by route template. The dashed line is "
                                  f"ApiLatencyP95High's {p95} (a bucket bound: above it, more than 5 % of the route's "
                                  f"requests took longer).", "s", query(latency(0.95), "{{endpoint}}"), width=8,
                                  alert_at=API_P95_SECONDS))
            .with_panel(described_graph("p99 latency by route", "99th percentile by route template; above 10 s it reads "
                                  "10 s (the highest bucket bound).", "s", query(latency(0.99), "{{endpoint}}"),
                                  width=8))
            .with_row(dashboard.Row("Errors"))
            .with_panel(described_graph("Error ratio, 5xx and 4xx apart", "Share of requests answered 5xx (the service "
                                  "failed) and 4xx (the client asked wrong: 404, 405, 422; 499 a client gone). The "
                                  "dashed line is ApiHttp5xxRatioHigh's 5 %.", "percentunit",
                                  query(ratio_5xx, "5xx"),
                                  query(ratio_4xx, "4xx"),
                                  alert_at=API_5XX_RATIO))
            .with_panel(described_graph("Errors per second by route and status", "4xx and 5xx answers by route template "
                                  "and status code.", "reqps",
                                  query(http_rate('status_code=~"4..|5.."', by="endpoint, status_code"),
                                        "{{status_code}} {{endpoint}}")))
            .with_row(dashboard.Row("Saturation"))
            .with_panel(described_graph("Requests in progress by route", "Being answered now, by route template (a "
                                  "long-running route holds its requests here).", "short",
                                  query(f"sum by (endpoint) (sparklio_http_requests_in_progress{{{SERVED}}})",
                                        "{{endpoint}}")))
            .with_panel(described_graph("Requests in progress per instance", f"Every worker of an instance added up. The "
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
