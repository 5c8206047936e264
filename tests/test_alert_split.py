"""One alert, one place (issue 33). The split: Prometheus (monitoring/rules/) holds service health and the
thresholds on KPIs; Superset (alerts/*.yaml) holds data alerts that come with a chart or a report. A KPI
alert Superset runs too (alerts/ works without the monitoring stack: `sparklio-bi alerts sync` alone) is
a twin, named in TWINS, and must agree with its Prometheus rule on the threshold and on the minimum of
executions; a Superset-only alert must have no Prometheus rule on the metric that carries it. Offline:
YAML and the rules' expressions only."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"
RULES = ROOT / "monitoring" / "rules"


@dataclass(frozen=True)
class Twin:
    """A Superset alert and the Prometheus alert holding the same condition."""

    superset: str  # alerts/<superset>.yaml
    prometheus: str  # an alert of monitoring/rules/*.yml
    unit: float  # Superset's threshold times this is Prometheus's (percent -> ratio, ms -> s, minutes -> s)
    adds_for: bool = False  # a growing age: Prometheus fires at its threshold plus its `for`
    window_only: bool = False  # a count of nothing (< 1 vs == 0): the windows must agree instead


TWINS = [
    Twin("agent_failure_rate", "AgentFailureRatioHigh", 0.01),
    Twin("agent_failing", "AgentFailureSpike", 0.01),
    Twin("agent_latency_p95", "AgentLatencyP95High", 0.001),
    Twin("collector_stale", "CollectorStale", 60, adds_for=True),
    Twin("no_workflow_started", "NoWorkflowsStarted", 1, window_only=True),
]
# Superset's alone, and the exporter metric a Prometheus rule on the same condition would read
SUPERSET_ONLY = {"database_size": "sparklio_database_size_bytes", "router_expensive_model": "sparklio_router_decisions"}
DURATION = re.compile(r"(\d+)([smh])")


def seconds(text: str) -> float:
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600}[u] for n, u in DURATION.findall(text))


def prometheus_alerts(rules_dir: Path = RULES) -> dict[str, dict]:
    return {rule["alert"]: rule for path in sorted(rules_dir.glob("*.yml"))
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule}


def superset_alerts(alerts_dir: Path = ALERTS) -> dict[str, dict]:
    docs = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(alerts_dir.glob("*.yaml"))}
    return {name: doc for name, doc in docs.items() if doc["type"] == "alert"}


def prometheus_terms(rule: dict, twin: Twin) -> dict[str, float | None]:
    expr = " ".join(rule["expr"].split())
    if twin.window_only:
        return {"window": seconds(re.search(r"\[(\w+)\]", expr).group(1))}
    threshold = float(re.search(r"> ([0-9.]+)", expr).group(1))
    if twin.adds_for:
        threshold += seconds(rule.get("for", "0s"))
    minimum = re.search(r"\* 300 >= (\d+)", expr)  # executions in the 5 minutes of the rate
    return {"threshold": threshold, "minimum": float(minimum.group(1)) if minimum else None}


def superset_terms(doc: dict, twin: Twin) -> dict[str, float | None]:
    if twin.window_only:
        return {"window": 60 * float(re.search(r"interval '(\d+) minutes'", doc["sql"]).group(1))}
    minimum = (doc.get("params") or {}).get("min_executions")
    return {"threshold": round(doc["condition"]["threshold"] * twin.unit, 9),
            "minimum": float(minimum) if minimum is not None else None}


def disagreements(rules: dict[str, dict], alerts: dict[str, dict]) -> list[str]:
    """What breaks the split: a twin whose terms differ, an alert of alerts/ neither a twin nor Superset-only,
    a Prometheus rule on a Superset-only alert's metric."""
    found = []
    for twin in TWINS:
        ours, theirs = prometheus_terms(rules[twin.prometheus], twin), superset_terms(alerts[twin.superset], twin)
        if ours != theirs:
            found.append(f"{twin.prometheus} {ours} != alerts/{twin.superset}.yaml {theirs}")
    unclassified = set(alerts) - {twin.superset for twin in TWINS} - set(SUPERSET_ONLY)
    found += [f"alerts/{name}.yaml: neither a twin of a Prometheus rule nor Superset-only" for name in sorted(unclassified)]
    for name, metric in SUPERSET_ONLY.items():
        found += [f"{alert} reads {metric}, which alerts/{name}.yaml holds" for alert, rule in rules.items()
                  if metric in rule["expr"]]
    return found


def test_each_condition_lives_in_one_place_or_its_twins_agree():
    assert disagreements(prometheus_alerts(), superset_alerts()) == []


def test_every_twin_names_existing_alerts():
    rules, alerts = prometheus_alerts(), superset_alerts()
    assert {twin.prometheus for twin in TWINS} <= set(rules)
    assert {twin.superset for twin in TWINS} | set(SUPERSET_ONLY) <= set(alerts)


def test_the_split_check_fails_on_a_drifted_threshold_and_on_a_second_home():
    """The check can fail: a threshold changed on one side, a minimum dropped, a Prometheus rule on the
    database size (Superset's alone)."""
    rules, alerts = prometheus_alerts(), superset_alerts()
    drifted = {**rules, "AgentFailureRatioHigh": {**rules["AgentFailureRatioHigh"],
                                                  "expr": rules["AgentFailureRatioHigh"]["expr"].replace("> 0.05", "> 0.07")}}
    assert any("AgentFailureRatioHigh" in line for line in disagreements(drifted, alerts))
    unguarded = {**alerts, "agent_latency_p95": {**alerts["agent_latency_p95"], "params": {}}}
    assert any("AgentLatencyP95High" in line for line in disagreements(rules, unguarded))
    doubled = {**rules, "DatabaseLarge": {"alert": "DatabaseLarge", "expr": "sparklio_database_size_bytes > 5e10"}}
    assert any("DatabaseLarge" in line for line in disagreements(doubled, alerts))
