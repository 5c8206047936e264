"""The Grafana dashboards as code (grafana-foundation-sdk, pinned in constraints.txt): writes
monitoring/grafana/dashboards/*.json, which Grafana's provisioning loads. Run after a change:

    .venv/bin/python monitoring/grafana/build_dashboards.py

tests/test_grafana.py checks offline that the JSON files are what this script builds, that
every query parses (promtool) and names only metrics the bundle's Prometheus has, and that the
datasource is the provisioned one (Grafana itself is not installable here).
"""
from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

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


def render(build) -> str:
    """The dashboard's JSON, its panels numbered 1, 2, ... in order (the SDK leaves every id 0)."""
    model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    for number_, panel in enumerate(model["panels"], start=1):
        panel["id"] = number_
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in DASHBOARDS.items():
        (OUT / name).write_text(render(build))


if __name__ == "__main__":
    main()
