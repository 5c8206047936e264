"""Monitoring as code (issue 18) with Debian's real Prometheus 2.42 (promtool), Alertmanager 0.25
(amtool), node_exporter and blackbox exporter, each on free loopback ports: the configuration
and rules check, every alert's promtool unit test passes, and a real Prometheus scraping the
exporter fires the failure-ratio alert through a real Alertmanager to a loopback webhook and a
loopback SMTP server; stopping the exporter and Superset's /health fire theirs.

Superset's /health is stood for by a small loopback HTTP server: the session's real Superset is
shared by the other test files of this worker, and stopping it here would break them; what the
alert proves (the blackbox probe fails, the alert fires) does not depend on who answers."""
from __future__ import annotations

import contextlib
import json
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
from tests.conftest import ROOT, free_port
from tests.test_metrics import metrics_db  # noqa: F401 - the seeded database fixture, one per module

MONITORING = ROOT / "monitoring"
BINARIES = {name: shutil.which(name) for name in ("promtool", "amtool", "prometheus", "prometheus-alertmanager",
                                                  "prometheus-node-exporter", "prometheus-blackbox-exporter")}
pytestmark = pytest.mark.skipif(not all(BINARIES.values()),
                                reason="Debian's prometheus, alertmanager, node and blackbox exporters: make system-packages")
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
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"], rule["alert"]
    assert {rule["alert"] for rule in rules} == tested


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
    assert "2 receivers" in run(BINARIES["amtool"], "check-config", str(rendered))
    assert yaml.safe_load(rendered.read_text())["global"]["smtp_auth_password"] == "p'a\"ss: #word"
    assert rendered.stat().st_mode & 0o077 == 0
    with pytest.raises(alert_routes.AlertRoutesError, match="ALERT_WEBHOOK_URL"):
        alert_routes.render(config.load({k: v for k, v in EXAMPLE_ALERT_ENV.items() if k != "ALERT_WEBHOOK_URL"}))


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


def rules_for_the_test(tmp_path: Path) -> Path:
    """The real rules with their `for` cut to seconds (the windows and thresholds stay)."""
    doc = yaml.safe_load((MONITORING / "rules/sparklio.yml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "5s"
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path



def prometheus_config(tmp_path: Path, ports: dict[str, int], rules: Path) -> Path:
    """monitoring/prometheus.yml with loopback targets, 1 s intervals and the test's rules."""
    doc = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    doc["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    doc["rule_files"] = [str(rules)]
    doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{ports['alertmanager']}"]
    # only the jobs the test runs something for (superset-health probes `superset`)
    doc["scrape_configs"] = [job for job in doc["scrape_configs"]
                             if {"superset-health": "superset"}.get(job["job_name"], job["job_name"]) in ports]
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
                                            "superset", "webhook", "smtp", "postgres")}
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    logs = [tmp_path / "prometheus.log", tmp_path / "alertmanager.log"]
    prometheus_yml = prometheus_config(tmp_path, ports, rules_for_the_test(tmp_path))
    exporter = metrics.start(reader, settings, ports["sparklio-exporter"], interval=1)
    try:
        with http_server(ports["webhook"]) as webhook, smtp_server(ports["smtp"]) as mails, \
                http_server(ports["superset"]) as superset, \
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

            wait_for("the exporter, node_exporter and the /health probe scraped", lambda: up("sparklio-exporter")
                     and up("node") and up("superset-health"), BUSY, logs)
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
            node_cpu = requests.get(f"{prometheus}/api/v1/query", params={"query": "instance:node_cpu_utilisation:ratio"},
                                    timeout=5).json()["data"]["result"]
            assert node_cpu and 0 <= float(node_cpu[0]["value"][1]) <= 1
    finally:
        exporter.stop()
