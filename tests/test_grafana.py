"""The Grafana dashboards and provisioning (issue 18), checked offline: Grafana is not
installable here (no Debian package), so nothing renders them. What is checked: the committed
JSON is exactly what monitoring/grafana/build_dashboards.py builds with the pinned
grafana-foundation-sdk; every query parses as PromQL (promtool, through a rules file) and names
only metrics that exist (the exporter's scrape, the bundle's recording rules, node_exporter's,
postgres_exporter's and the blackbox exporter's), the dashboards' variables substituted first;
every panel reads the datasource variable, which defaults to the provisioned Prometheus, and has a
description; job and instance variables; an "Alerts firing" panel; the alerts' thresholds drawn."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess

import pytest
import yaml

from sparklio_bi.ops import metrics
from tests.conftest import ROOT
from tests.test_metrics import metrics_db, scrape_text  # noqa: F401 - the seeded database fixture

GRAFANA = ROOT / "monitoring" / "grafana"
OTHER_EXPORTERS = ("node_", "pg_", "probe_", "up")  # not the bundle's: their names are theirs


def builder():
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))}


def substituted(expr: str) -> str:
    """A query as Prometheus gets it from Grafana: $__rate_interval a duration, a variable its All (.+)."""
    return re.sub(r"\$\{?(\w+)\}?", lambda found: "5m" if found.group(1) == "__rate_interval" else ".+", expr)


def queries() -> list[str]:
    return [substituted(target["expr"]) for board in dashboards().values() for panel in board["panels"]
            for target in panel.get("targets", [])]


def test_committed_dashboards_are_what_the_code_builds():
    build = builder()
    assert set(dashboards()) == set(build.DASHBOARDS) and len(build.DASHBOARDS) >= 2
    for name, make in build.DASHBOARDS.items():
        assert (GRAFANA / "dashboards" / name).read_text() == build.render(make), \
            f"{name} is stale: run .venv/bin/python monitoring/grafana/build_dashboards.py"


def test_panels_read_the_provisioned_datasource_and_have_unique_ids():
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())["datasources"]
    (uid,) = [source["uid"] for source in provisioned if source["type"] == "prometheus"]
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/sparklio.yml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]
    for name, board in dashboards().items():
        assert board["uid"] and board["title"] and board["schemaVersion"] >= 39, name  # Grafana 11's
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        variables = {variable["name"]: variable for variable in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        assert variables["datasource"]["current"]["value"] == uid, name  # the provisioned one by default
        for label in ("job", "instance"):
            assert variables[label]["query"].startswith("label_values(") and variables[label]["includeAll"], name
            assert variables[label]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
        assert board["description"], name
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name
                assert panel["targets"] and all(t["refId"] for t in panel["targets"]), (name, panel["title"])
                assert panel.get("description"), (name, panel["title"])


def test_the_dashboards_count_firing_alerts_and_draw_the_alerts_thresholds():
    rules = {rule["alert"]: rule for group in yaml.safe_load((ROOT / "monitoring/rules/sparklio.yml").read_text())["groups"]
             for rule in group["rules"] if "alert" in rule}
    for name, board in dashboards().items():
        panels = {panel["title"]: panel for panel in board["panels"]}
        assert 'ALERTS{alertstate="firing"' in panels["Alerts firing"]["targets"][0]["expr"], name
        queries_text = " ".join(t["expr"] for panel in board["panels"] for t in panel.get("targets", []))
        assert "$__rate_interval" in queries_text and not re.search(r"rate\([^)]*\[\d+m\]", queries_text), name
    drawn = {title: panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
             for board in dashboards().values() for title, panel in ((p["title"], p) for p in board["panels"])
             if panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds")}
    for title, alert in (("Latency p95 by agent (last 5 min)", "AgentLatencyP95High"), ("CPU busy", "HostHighCpu"),
                         ("Disk used", "HostDiskFull"), ("PostgreSQL connections used", "PostgresConnectionsHigh")):
        assert f"> {drawn[title]:g}" in " ".join(rules[alert]["expr"].split()), (title, drawn[title])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian's prometheus (promtool): make system-packages")
def test_every_query_parses(tmp_path):
    rules = {"groups": [{"name": "dashboards", "rules": [{"record": f"dashboard:query_{i}", "expr": expr}
                                                         for i, expr in enumerate(queries())]}]}
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", str(tmp_path / "queries.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_a_query_names_exists(metrics_db, settings):  # noqa: F811
    collector = metrics.KpiCollector(metrics_db[1], settings)
    collector.run_round()
    exported = set(re.findall(r"^# TYPE (\w+)", scrape_text(collector), re.M))
    exported |= {name + "_total" for name in exported}
    recorded = {rule["record"] for group in yaml.safe_load((ROOT / "monitoring/rules/sparklio.yml").read_text())["groups"]
                for rule in group["rules"] if "record" in rule}
    functions = {"sum", "rate", "increase", "topk", "max", "min", "by", "time", "count", "vector", "on", "or"}
    named = set()
    for expr in queries():
        names = set(re.findall(r"(?<![\w{\"])([a-z_][a-z0-9_:]*)(?=\s*[{\[)\s]|$)", re.sub(r'"[^"]*"', '""', expr)))
        names -= functions | {"agent", "model", "intent", "status", "review_status", "query", "rollup", "job", "instance"}
        unknown = {n for n in names if n not in exported | recorded and not n.startswith(OTHER_EXPORTERS)}
        assert not unknown, (expr, unknown)
        named |= names
    assert {"sparklio_agent_executions_total", "sparklio_workflow_runs", "instance:node_cpu_utilisation:ratio",
            "pg_up", "probe_success"} <= named
