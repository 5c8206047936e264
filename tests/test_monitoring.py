"""Monitoring as code (issue 18) with Debian's real Prometheus 2.42 (promtool), Alertmanager 0.25
(amtool), node_exporter and blackbox exporter, each on free loopback ports: the configuration
and rules check, every alert's promtool unit test passes, and a real Prometheus scraping the
exporter fires the failure-ratio alert through a real Alertmanager to a loopback webhook and a
loopback SMTP server; stopping the exporter, Superset's /health and Redis (redis_exporter
watching it) fire theirs.

Superset's /health is stood for by a small loopback HTTP server: the session's real Superset is
shared by the other test files of this worker, and stopping it here would break them; what the
alert proves (the blackbox probe fails, the alert fires) does not depend on who answers."""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from sparklio_bi import config
from sparklio_bi.ops import alert_routes, metrics
from sparklio_bi.postgres import database
from tests.conftest import ROOT, free_port, running_redis
from tests.test_metrics import metrics_db  # noqa: F401 - the seeded database fixture, one per module

MONITORING = ROOT / "monitoring"
BINARIES = {name: shutil.which(name) for name in ("promtool", "amtool", "prometheus", "prometheus-alertmanager",
                                                  "prometheus-node-exporter", "prometheus-blackbox-exporter",
                                                  "prometheus-redis-exporter")}
pytestmark = pytest.mark.skipif(not all(BINARIES.values()), reason="Debian's prometheus, alertmanager, node, blackbox "
                                "and redis exporters: make system-packages")
EXAMPLE_ALERT_ENV = {"ALERT_EMAIL_TO": "ops@example.com", "ALERT_EMAIL_FROM": "alertmanager@example.com",
                     "ALERT_SMTP_SMARTHOST": "smtp.example.com:587", "ALERT_WEBHOOK_URL": "https://hooks.example.com/x"}


def run(*args: str, cwd: Path = MONITORING) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_checks_the_configuration_and_the_rules():
    out = run(BINARIES["promtool"], "check", "config", "prometheus.yml")
    assert "SUCCESS" in out and "rules found" in out
    rules = sorted(str(path.relative_to(MONITORING)) for path in (MONITORING / "rules").glob("*.yml"))
    assert "rules/sparklio.yml" in rules
    run(BINARIES["promtool"], "check", "rules", *rules)  # rules/*.yml: rule files only, the unit tests live in tests/


def test_every_alert_has_severity_summary_runbook_and_a_unit_test():
    rules = [rule for group in yaml.safe_load((MONITORING / "rules/sparklio.yml").read_text())["groups"]
             for rule in group["rules"] if "alert" in rule]
    tested = {check["alertname"] for test in yaml.safe_load((MONITORING / "tests/sparklio_test.yml").read_text())["tests"]
              for check in test["alert_rule_test"] if check["exp_alerts"]}
    for rule in rules:
        # none: the Watchdog only, which goes to the heartbeat receiver and pages nobody
        assert rule["labels"]["severity"] in ("critical", "warning") or rule["alert"] == "Watchdog", rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"], rule["alert"]
    assert {rule["alert"] for rule in rules} == tested


def sparklio_alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for group in yaml.safe_load((MONITORING / "rules/sparklio.yml").read_text())["groups"]
            for rule in group["rules"] if "alert" in rule}


def test_every_scrape_job_has_a_down_alert_and_an_absent_guard():
    """up == 0 for each job of prometheus.yml (TargetDown, or ExporterDown and ApiDown for theirs), and an
    absent(up{job}) line in ScrapeJobMissing for each: a job renamed on one side only fails here."""
    jobs = {job["job_name"] for job in yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]}
    assert {"prometheus", "alertmanager"} <= jobs
    alerts = sparklio_alerts()
    guarded = set(re.findall(r'absent\(up\{job="([^"]+)"\}\)', alerts["ScrapeJobMissing"]["expr"]))
    assert guarded == jobs
    own = {"sparklio-exporter": alerts["ExporterDown"]["expr"],
           "sparklio-api": next(rule["expr"] for group in yaml.safe_load((MONITORING / "rules/api.yml").read_text())["groups"]
                                for rule in group["rules"] if rule.get("alert") == "ApiDown")}
    for job, expr in own.items():
        assert expr == f'up{{job="{job}"}} == 0'
    excluded = re.fullmatch(r'up\{job!~"([^"]+)"\} == 0', alerts["TargetDown"]["expr"]).group(1).split("|")
    assert set(excluded) == set(own)  # every other job: TargetDown


def quiet_day_series() -> list[dict]:
    """24 hours of demo-shaped series, one sample a minute: steady traffic with 2 % failures, the slowest
    agent at a p95 of 150 s, a host at 40 % CPU and memory, a disk 60 % full, every target up."""
    day = 1440
    targets = {"sparklio-exporter": "metrics-exporter:9610", "node": "node-exporter:9100", "postgres": "postgres-exporter:9187",
               "sparklio-api": "sparklio-api:8000", "superset-health": "http://superset:8088/health",
               "prometheus": "localhost:9090", "alertmanager": "alertmanager:9093", "redis": "redis-exporter:9121"}
    series = {f'up{{job="{job}",instance="{instance}"}}': f"1x{day}" for job, instance in targets.items()}
    series.update({f'process_start_time_seconds{{job="{job}",instance="{instance}"}}': f"1000x{day}"
                   for job, instance in targets.items()})
    exporter = 'job="sparklio-exporter",instance="metrics-exporter:9610"'
    pg = 'job="postgres",instance="postgres-exporter:9187",server="postgres:5432"'
    node = 'job="node",instance="node-exporter:9100"'
    disk = f'{node},fstype="ext4",mountpoint="/",device="sda1"'
    series.update({
        f'sparklio_agent_executions_total{{{exporter},agent="designer",model="sdxl"}}': f"0+10x{day}",
        f'sparklio_agent_failures_total{{{exporter},agent="designer",model="sdxl"}}': f"0+0.2x{day}",
        f'sparklio_agent_executions_total{{{exporter},agent="researcher",model="gpt-4o"}}': f"0+20x{day}",
        f'sparklio_agent_failures_total{{{exporter},agent="researcher",model="gpt-4o"}}': f"0+0.4x{day}",
        f'sparklio_agent_latency_p95_seconds{{{exporter},agent="designer"}}': f"150x{day}",
        f'sparklio_agent_latency_p95_seconds{{{exporter},agent="researcher"}}': f"40x{day}",
        f'sparklio_workflow_runs_started_total{{{exporter}}}': f"0+3x{day}",
        f'sparklio_exporter_last_round_success{{{exporter}}}': f"1x{day}",
        f'sparklio_exporter_last_success_timestamp_seconds{{{exporter}}}': f"0+60x{day}",
        f'sparklio_collector_sample_age_seconds{{{exporter}}}': f"30x{day}",
        f'sparklio_rollup_lag_seconds{{{exporter},rollup="agents"}}': f"20x{day}",
        'probe_success{job="superset-health",instance="http://superset:8088/health"}': f"1x{day}",
        f"pg_up{{{pg}}}": f"1x{day}",
        'redis_up{job="redis",instance="redis-exporter:9121"}': f"1x{day}",
        f"pg_settings_max_connections{{{pg}}}": f"100x{day}",
        f'pg_stat_activity_count{{{pg},datname="sparklio",state="active"}}': f"5x{day}",
        f'pg_stat_activity_count{{{pg},datname="sparklio",state="idle"}}': f"20x{day}",
        f'pg_stat_activity_max_tx_duration{{{pg},datname="sparklio",state="active"}}': f"2x{day}",
        f'pg_stat_activity_max_tx_duration{{{pg},datname="sparklio",state="idle"}}': f"0x{day}",
        f"pg_replication_is_replica{{{pg}}}": f"0x{day}",
        f"pg_replication_lag_seconds{{{pg}}}": f"0x{day}",
        f"pg_postmaster_start_time_seconds{{{pg}}}": f"1000x{day}",
        f'node_cpu_seconds_total{{{node},cpu="0",mode="idle"}}': f"0+36x{day}",
        f"node_memory_MemAvailable_bytes{{{node}}}": f"60x{day}",
        f"node_memory_MemTotal_bytes{{{node}}}": f"100x{day}",
        f"node_filesystem_avail_bytes{{{disk}}}": f"40x{day}",
        f"node_filesystem_size_bytes{{{disk}}}": f"100x{day}",
        f"node_filesystem_files_free{{{disk}}}": f"8000x{day}",
        f"node_filesystem_files{{{disk}}}": f"10000x{day}",
        f"node_vmstat_oom_kill{{{node}}}": f"3x{day}",
        'prometheus_rule_evaluation_failures_total{job="prometheus",instance="localhost:9090",rule_group="sparklio"}': f"0x{day}",
        'prometheus_notifications_errors_total{job="prometheus",instance="localhost:9090",alertmanager="am"}': f"0x{day}",
        'alertmanager_notifications_failed_total{job="alertmanager",instance="alertmanager:9093",integration="email"}':
            f"0x{day}",
    })
    return [{"series": name, "values": values} for name, values in series.items()]


def test_a_quiet_demo_day_fires_no_alert_but_the_watchdog(tmp_path):
    """Noise: 24 hours of demo-shaped series through `promtool test rules`, every alert checked every 20
    minutes: none fires but the Watchdog."""
    checks = [{"eval_time": f"{minute}m", "alertname": name, "exp_alerts": []}
              for minute in range(20, 1441, 20) for name in sparklio_alerts() if name != "Watchdog"]
    watchdog = sparklio_alerts()["Watchdog"]
    checks.append({"eval_time": "24h", "alertname": "Watchdog",
                   "exp_alerts": [{"exp_labels": watchdog["labels"], "exp_annotations": watchdog["annotations"]}]})
    day = {"rule_files": [str(MONITORING / "rules/sparklio.yml")], "evaluation_interval": "1m",
           "tests": [{"name": "a quiet demo day", "interval": "1m", "input_series": quiet_day_series(),
                      "alert_rule_test": checks}]}
    (tmp_path / "quiet_day_test.yml").write_text(yaml.safe_dump(day, sort_keys=False))
    done = subprocess.run([BINARIES["promtool"], "test", "rules", "quiet_day_test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    # and it can fail: the old 30 s latency threshold pages all day on the same series
    rules = tmp_path / "sparklio.yml"
    rules.write_text((MONITORING / "rules/sparklio.yml").read_text().replace(
        "sparklio_agent_latency_p95_seconds > 180", "sparklio_agent_latency_p95_seconds > 30"))
    day["rule_files"] = [str(rules)]
    (tmp_path / "quiet_day_test.yml").write_text(yaml.safe_dump(day, sort_keys=False))
    done = subprocess.run([BINARIES["promtool"], "test", "rules", "quiet_day_test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "alertname: AgentLatencyP95High, time: 20m" in out, out[-2000:]


def test_the_exporter_serves_a_failed_round_and_logs_its_error_once(settings, caplog):
    """A round that fails (no server at the address) is 0 in sparklio_exporter_last_round_success from the
    first round on, and its error is logged once, not once a round."""
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    collector = metrics.KpiCollector(f"postgresql://nobody@127.0.0.1:{free_port()}/nothing", settings)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    with caplog.at_level("WARNING", logger="sparklio_bi.ops.metrics"):
        for _ in range(3):
            assert collector.run_round()
    logged = [record.getMessage() for record in caplog.records if record.name == "sparklio_bi.ops.metrics"]
    assert len(logged) == 1 and "connection failed" in logged[0], logged
    scrape = generate_latest(registry).decode()
    assert "sparklio_exporter_last_round_success 0.0" in scrape
    assert "sparklio_exporter_last_success_timestamp_seconds" not in scrape


def test_promtool_unit_tests_of_every_alert_pass():
    assert "SUCCESS" in run(BINARIES["promtool"], "test", "rules", "sparklio_test.yml", cwd=MONITORING / "tests")


def test_a_unit_test_fails_when_an_alert_fires_too_early(tmp_path):
    """The unit tests can fail: the same tests against rules whose `for` was dropped do."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    shutil.copy(MONITORING / "tests/sparklio_test.yml", tmp_path / "tests")
    text = (MONITORING / "rules/sparklio.yml").read_text()
    (tmp_path / "rules/sparklio.yml").write_text(text.replace("for: 5m", "for: 0m"))
    done = subprocess.run([BINARIES["promtool"], "test", "rules", "sparklio_test.yml"], cwd=tmp_path / "tests",
                          capture_output=True, text=True)
    assert done.returncode != 0 and "AgentFailureRatioHigh, time: 17m" in done.stdout + done.stderr


def test_amtool_checks_the_rendered_alertmanager_config(tmp_path):
    settings = config.load(dict(EXAMPLE_ALERT_ENV, ALERT_SMTP_PASSWORD="p'a\"ss: #word"))
    rendered = alert_routes.write(settings, tmp_path / "alertmanager.yml")
    assert "3 receivers" in run(BINARIES["amtool"], "check-config", str(rendered))
    doc = yaml.safe_load(rendered.read_text())
    receivers = {receiver["name"]: receiver for receiver in doc["receivers"]}
    assert receivers["heartbeat"] == {"name": "heartbeat"}  # ALERT_HEARTBEAT_URL unset: no config, beats dropped
    assert doc["route"]["routes"][0]["matchers"] == ['alertname="Watchdog"']
    assert doc["route"]["routes"][0]["receiver"] == "heartbeat"
    beating = alert_routes.write(config.load(dict(EXAMPLE_ALERT_ENV, ALERT_HEARTBEAT_URL="https://hc.example.com/ping/x")),
                                 tmp_path / "beating.yml")
    assert "3 receivers" in run(BINARIES["amtool"], "check-config", str(beating))
    heartbeat = {r["name"]: r for r in yaml.safe_load(beating.read_text())["receivers"]}["heartbeat"]
    assert heartbeat["webhook_configs"] == [{"url": "https://hc.example.com/ping/x", "send_resolved": False}]
    assert yaml.safe_load(rendered.read_text())["global"]["smtp_auth_password"] == "p'a\"ss: #word"
    assert rendered.stat().st_mode & 0o077 == 0
    with pytest.raises(alert_routes.AlertRoutesError, match="ALERT_WEBHOOK_URL"):
        alert_routes.render(config.load({k: v for k, v in EXAMPLE_ALERT_ENV.items() if k != "ALERT_WEBHOOK_URL"}))


def test_alertmanager_routes_office_hours_slack_and_one_page_per_outage(tmp_path):
    """The Watchdog goes to the heartbeat only, office-hours alerts keep weekdays 08:00-20:00 in
    SPARKLIO_TIMEZONE, Slack is a receiver config only when its URL is set, and every alert an inhibit
    rule names exists (a renamed alert would silently escape its rule)."""
    settings = config.load(dict(EXAMPLE_ALERT_ENV, ALERT_SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T/B/x",
                                SPARKLIO_TIMEZONE="Europe/Paris"))
    rendered = alert_routes.write(settings, tmp_path / "alertmanager.yml")
    assert "3 receivers" in run(BINARIES["amtool"], "check-config", str(rendered))
    for labels, receiver in ((["alertname=Watchdog", "severity=none"], "heartbeat"),
                             (["alertname=NoWorkflowsStarted", "severity=warning", "hours=office"], "warnings"),
                             (["alertname=PostgresDown", "severity=critical"], "critical"),
                             (["alertname=HostHighCpu", "severity=warning"], "warnings")):
        assert run(BINARIES["amtool"], "config", "routes", "test", f"--config.file={rendered}", *labels).split()[0] == receiver
    doc = yaml.safe_load(rendered.read_text())
    (office,) = [route for route in doc["route"]["routes"] if route["matchers"] == ['hours="office"']]
    assert office["active_time_intervals"] == ["office-hours"]
    assert doc["time_intervals"][0]["time_intervals"][0]["location"] == "Europe/Paris"
    assert sparklio_alerts()["NoWorkflowsStarted"]["labels"]["hours"] == "office"
    receivers = {receiver["name"]: receiver for receiver in doc["receivers"]}
    assert {r["api_url"] for name in ("critical", "warnings") for r in receivers[name]["slack_configs"]} == {
        "https://hooks.slack.com/services/T/B/x"}
    unset = yaml.safe_load(alert_routes.render(config.load(EXAMPLE_ALERT_ENV)))
    assert not any("slack_configs" in receiver for receiver in unset["receivers"])
    names = set(sparklio_alerts())
    for rule in doc["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            found = re.fullmatch(r'alertname=~?"([^"]+)"', matcher)
            if found:
                assert set(found.group(1).split("|")) <= names, matcher
    sources = {rule["source_matchers"][0] for rule in doc["inhibit_rules"]}
    assert sources == {'alertname="PostgresDown"', 'alertname="ExporterDown"'}


@pytest.mark.slow
def test_real_alertmanager_posts_slack_and_heartbeats_and_pages_once_per_database_outage(tmp_path):
    """A real Alertmanager 0.25 with the rendered config, alerts posted to its API as Prometheus would: the
    Watchdog reaches the heartbeat server, PostgresDown reaches the Slack-shaped loopback server (a Slack
    incoming webhook's JSON) and the webhook, and the alerts PostgresDown makes moot are inhibited."""
    ports = {name: free_port() for name in ("alertmanager", "webhook", "slack", "heartbeat", "smtp")}
    settings = config.load({"ALERT_EMAIL_TO": "ops@example.com", "ALERT_EMAIL_FROM": "alertmanager@example.com",
                            "ALERT_SMTP_SMARTHOST": f"127.0.0.1:{ports['smtp']}", "ALERT_SMTP_REQUIRE_TLS": "false",
                            "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{ports['webhook']}/alerts",
                            "ALERT_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{ports['slack']}/services/T/B/x",
                            "ALERT_HEARTBEAT_URL": f"http://127.0.0.1:{ports['heartbeat']}/ping"})
    doc = yaml.safe_load(alert_routes.render(settings))
    for route in (doc["route"], *doc["route"]["routes"]):
        route.update(group_wait="1s", group_interval="2s", repeat_interval="3s")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    api = f"http://127.0.0.1:{ports['alertmanager']}/api/v2/alerts"
    log = tmp_path / "alertmanager.log"
    rules = sparklio_alerts()

    def alert(name: str, **labels: str) -> dict:
        rule = rules[name]
        return {"labels": {"alertname": name, **rule["labels"], **labels},
                "annotations": {"summary": f"{name} (test)", "runbook": "the test's"}}

    with http_server(ports["webhook"]) as webhook, http_server(ports["slack"]) as slack, \
            http_server(ports["heartbeat"]) as heartbeat, smtp_server(ports["smtp"]), \
            process([BINARIES["prometheus-alertmanager"], f"--config.file={path}", f"--storage.path={tmp_path / 'am-data'}",
                     f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address="], log):
        wait_for("Alertmanager ready", lambda: requests.get(api, timeout=5).ok, BUSY, [log])
        sent = [alert("Watchdog"), alert("PostgresDown", job="postgres", instance="postgres-exporter:9187"),
                alert("ExporterQueriesFailing", job="sparklio-exporter", instance="metrics-exporter:9610"),
                alert("CollectorStale")]
        assert requests.post(api, json=sent, timeout=5).ok
        wait_for("the Watchdog at the heartbeat receiver", lambda: webhook_got(heartbeat, "Watchdog"), BUSY, [log])
        wait_for("PostgresDown on Slack", lambda: any("PostgresDown" in attachment["title"]
                                                     for body in slack.received for attachment in body["attachments"]),
                 BUSY, [log])
        wait_for("PostgresDown at the webhook", lambda: webhook_got(webhook, "PostgresDown"), BUSY, [log])

        def inhibited() -> set[str]:
            return {a["labels"]["alertname"] for a in requests.get(api, timeout=5).json() if a["status"]["inhibitedBy"]}

        assert wait_for("the moot alerts inhibited", lambda: inhibited() == {"ExporterQueriesFailing", "CollectorStale"},
                        BUSY, [log])
        wait_for("a second heartbeat (the repeat)", lambda: len(heartbeat.received) >= 2, BUSY, [log])
        delivered = {a["labels"]["alertname"] for body in webhook.received for a in body["alerts"]}
        titles = " ".join(attachment["title"] for body in slack.received for attachment in body["attachments"])
        assert {a["labels"]["alertname"] for body in heartbeat.received for a in body["alerts"]} == {"Watchdog"}
        for name in ("Watchdog", "ExporterQueriesFailing", "CollectorStale"):  # not to the pages: one page
            assert name not in delivered and name not in titles, (name, delivered, titles)


# --- the real chain ----------------------------------------------------------------------------

class Recorder(BaseHTTPRequestHandler):
    """Loopback HTTP: POST bodies are kept (the webhook receiver); GET /health answers 200 (the
    stand-in for Superset's /health)."""

    received: list[dict]

    def do_POST(self):  # noqa: N802 - http.server's name
        self.server.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def http_server(port: int):
    server = ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def smtp_server(port: int):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    class Keep(Message):
        def __init__(self):
            super().__init__()
            self.messages = []

        def handle_message(self, message):
            self.messages.append(message)

    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler.messages
    finally:
        controller.stop()


@contextlib.contextmanager
def process(args: list[str], log: Path):
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(what: str, check, seconds: float = 30, logs: list[Path] = ()):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            found = check()
            if found:
                return found
        time.sleep(0.25)
    tails = "\n".join(f"--- {log.name}\n" + log.read_text()[-2000:] for log in logs)
    raise AssertionError(f"{what} within {seconds} s\n{tails}")


def rules_for_the_test(tmp_path: Path, rules: Path = MONITORING / "rules/sparklio.yml") -> Path:
    """A rules file of monitoring/ with its `for` cut to seconds (the windows, guards and thresholds stay)."""
    doc = yaml.safe_load(rules.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "5s"
    path = tmp_path / f"test-{rules.name}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path



def prometheus_config(tmp_path: Path, ports: dict[str, int], rules: Path, scrape_itself: bool = False) -> Path:
    """monitoring/prometheus.yml with loopback targets, 1 s intervals and the test's rules; the prometheus
    and alertmanager jobs (their own metrics) only with `scrape_itself`."""
    doc = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    doc["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    doc["rule_files"] = [str(rules)]
    doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{ports['alertmanager']}"]
    # only the jobs the test runs something for (superset-health probes `superset`)
    itself = {"prometheus", "alertmanager"}
    doc["scrape_configs"] = [job for job in doc["scrape_configs"]
                             if {"superset-health": "superset"}.get(job["job_name"], job["job_name"]) in ports
                             and (scrape_itself or job["job_name"] not in itself)]
    for job in doc["scrape_configs"]:
        name = job["job_name"]
        if name == "superset-health":
            job["static_configs"][0]["targets"] = [f"http://127.0.0.1:{ports['superset']}/health"]
            job["relabel_configs"][-1]["replacement"] = f"127.0.0.1:{ports['blackbox']}"
        else:
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{ports[name]}"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def alertmanager_config(tmp_path: Path, ports: dict[str, int]) -> Path:
    """The template rendered with loopback receivers; groups sent after 1 s, not 10 s."""
    settings = config.load({"ALERT_EMAIL_TO": "ops@example.com", "ALERT_EMAIL_FROM": "alertmanager@example.com",
                            "ALERT_SMTP_SMARTHOST": f"127.0.0.1:{ports['smtp']}", "ALERT_SMTP_REQUIRE_TLS": "false",
                            "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{ports['webhook']}/alerts"})
    doc = yaml.safe_load(alert_routes.render(settings))
    for route in (doc["route"], *doc["route"]["routes"]):
        route.update(group_wait="1s", group_interval="2s")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# the most a step of the real-Prometheus test may wait for its event (it returns on the event: a
# quiet machine takes 1-10 s a step; a load-10 one was seen taking over 40 s)
BUSY = 180


def scalar(prometheus: str, query: str) -> float:
    """The one value of an instant query, NaN when it has none yet."""
    result = requests.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else float("nan")


def alert_states(prometheus: str, name: str) -> set[str]:
    alerts = requests.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["state"] for a in alerts if a["labels"]["alertname"] == name}


def webhook_got(server, name: str) -> bool:
    return any(alert["labels"]["alertname"] == name and alert["status"] == "firing"
               for body in server.received for alert in body["alerts"])


def insert_failure_burst(owner_url: str, executions: int = 40, failures: int = 30) -> None:
    with database.connect(owner_url) as conn, conn.cursor() as cur:
        cur.execute("""insert into agent_logs (workflow_id, agent_name, model, status, latency_ms, error_type, error_at)
                       select (select min(id) from workflows), 'copywriter', 'gpt-4o',
                              case when i <= %(failures)s then 'error' else 'success' end, 500,
                              case when i <= %(failures)s then 'Timeout' end, case when i <= %(failures)s then now() end
                       from generate_series(1, %(executions)s) as i""",
                    {"executions": executions, "failures": failures})


@pytest.mark.slow
def test_real_prometheus_and_alertmanager_fire_and_deliver(metrics_db, settings, tmp_path):  # noqa: F811
    owner, reader = metrics_db
    ports = {name: free_port() for name in ("prometheus", "alertmanager", "sparklio-exporter", "node", "blackbox",
                                            "superset", "webhook", "smtp", "postgres", "redis")}
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    logs = [tmp_path / "prometheus.log", tmp_path / "alertmanager.log"]
    prometheus_yml = prometheus_config(tmp_path, ports, rules_for_the_test(tmp_path), scrape_itself=True)
    exporter = metrics.start(reader, settings, ports["sparklio-exporter"], interval=1)
    try:
        with http_server(ports["webhook"]) as webhook, smtp_server(ports["smtp"]) as mails, \
                http_server(ports["superset"]) as superset, running_redis(tmp_path) as (redis_url, redis_client), \
                process([BINARIES["prometheus-redis-exporter"], f"-redis.addr={redis_url}",
                         f"-web.listen-address=127.0.0.1:{ports['redis']}"], tmp_path / "redis-exporter.log"), \
                process([BINARIES["prometheus-node-exporter"], f"--web.listen-address=127.0.0.1:{ports['node']}"],
                        tmp_path / "node.log"), \
                process([BINARIES["prometheus-blackbox-exporter"], f"--config.file={MONITORING / 'blackbox.yml'}",
                         f"--web.listen-address=127.0.0.1:{ports['blackbox']}"], tmp_path / "blackbox.log"), \
                process([BINARIES["prometheus-alertmanager"], f"--config.file={alertmanager_config(tmp_path, ports)}",
                         f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                         "--cluster.listen-address="], logs[1]), \
                process([BINARIES["prometheus"], f"--config.file={prometheus_yml}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                         f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
                        logs[0]):

            def up(job: str) -> bool:
                result = requests.get(f"{prometheus}/api/v1/query", params={"query": f'up{{job="{job}"}}'},
                                      timeout=5).json()["data"]["result"]
                return bool(result) and result[0]["value"][1] == "1"

            wait_for("the exporter, node_exporter, the /health probe, Prometheus and Alertmanager scraped",
                     lambda: up("sparklio-exporter") and up("node") and up("superset-health") and up("prometheus")
                     and up("alertmanager") and up("redis") and scalar(prometheus, "min(redis_up)") == 1, BUSY, logs)
            wait_for("two scrapes of the exporter's counters", lambda: requests.get(
                f"{prometheus}/api/v1/query", params={"query": "count_over_time(sparklio_exporter_rounds_total[1m])"},
                timeout=5).json()["data"]["result"][0]["value"][1] not in ("0", "1"), BUSY, logs)
            assert alert_states(prometheus, "AgentFailureRatioHigh") == set()  # the seed is old: nothing ran lately

            failures_before = scalar(prometheus, "sum(sparklio_agent_failures_total) or vector(0)")
            insert_failure_burst(owner)
            seen: set[str] = set()

            def firing() -> bool:
                seen.update(alert_states(prometheus, "AgentFailureRatioHigh"))
                return "firing" in seen

            # each step waits for the event before it (the caps only bound a failure, on a busy machine)
            wait_for("Prometheus scraping the burst's 30 failures", lambda: scalar(
                prometheus, "sum(sparklio_agent_failures_total) or vector(0)") >= failures_before + 30, BUSY, logs)
            wait_for("AgentFailureRatioHigh firing", firing, BUSY, logs)
            assert "pending" in seen  # pending first, for its `for`
            wait_for("the webhook receiving AgentFailureRatioHigh", lambda: webhook_got(webhook, "AgentFailureRatioHigh"),
                     BUSY, logs)
            wait_for("a mail about AgentFailureRatioHigh", lambda: any(
                "AgentFailureRatioHigh" in (message["Subject"] or "") for message in mails), BUSY, logs)

            superset.shutdown()
            superset.server_close()
            wait_for("SupersetDown firing", lambda: alert_states(prometheus, "SupersetDown") == {"firing"}, BUSY, logs)
            exporter.stop()
            wait_for("ExporterDown firing", lambda: alert_states(prometheus, "ExporterDown") == {"firing"}, BUSY, logs)
            wait_for("the webhook receiving ExporterDown and SupersetDown", lambda: webhook_got(webhook, "ExporterDown")
                     and webhook_got(webhook, "SupersetDown"), BUSY, logs)
            with contextlib.suppress(Exception):  # the server goes away mid-answer
                redis_client.shutdown(nosave=True)
            wait_for("RedisDown firing", lambda: alert_states(prometheus, "RedisDown") == {"firing"}, BUSY, logs)
            wait_for("the webhook receiving RedisDown", lambda: webhook_got(webhook, "RedisDown"), BUSY, logs)
            node_cpu = requests.get(f"{prometheus}/api/v1/query", params={"query": "instance:node_cpu_utilisation:ratio"},
                                    timeout=5).json()["data"]["result"]
            assert node_cpu and 0 <= float(node_cpu[0]["value"][1]) <= 1
    finally:
        exporter.stop()
