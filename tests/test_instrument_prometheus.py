"""sparklio-instrument seen by a real Prometheus (issue 32): the example app (examples/sparklio_api, gunicorn
with two uvicorn workers, multiprocess mode) on loopback, scraped by Debian's Prometheus 2.42 every second
with monitoring/rules/api.yml (its `for` cut to seconds, the windows and thresholds kept), alerting through
a real Alertmanager 0.25 to a loopback webhook. A burst of 5xx fires ApiHttp5xxRatioHigh (pending, then
firing, then delivered); ten distinct project ids are one series; every query of the API Performance
dashboard answers with data. The rules' promtool unit tests (monitoring/tests/api_test.yml) and the
dashboard's offline checks are here too.

Every wait returns on its event; the caps (BUSY, 180 s) only bound a failure on a busy machine."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from http.client import HTTPConnection, HTTPException
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import ROOT, free_port
from tests.test_monitoring import (
    BINARIES,
    BUSY,
    alert_states,
    alertmanager_config,
    http_server,
    process,
    prometheus_config,
    rules_for_the_test,
    scalar,
    smtp_server,
    wait_for,
    webhook_got,
)

MONITORING = ROOT / "monitoring"
INSTRUMENT = ROOT / "instrument"
EXAMPLE = ROOT / "examples" / "sparklio_api"
GRAFANA = MONITORING / "grafana"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="Debian's prometheus (promtool): make system-packages")


# --- the example app, in a venv of its own (shared with tests/test_instrument_sink.py) ---------------------

def example_venv(tmp_path_factory) -> Path:
    """A fresh venv holding the package with its sink extra, FastAPI, uvicorn and gunicorn; built once per
    session (per xdist worker: each has its own base temp directory). Returns its bin/."""
    home = tmp_path_factory.getbasetemp() / "instrument-example-venv"
    if not (home / "ready").exists():
        shutil.rmtree(home, ignore_errors=True)
        source = shutil.copytree(INSTRUMENT, home / "instrument",
                                 ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        subprocess.run([sys.executable, "-m", "venv", home / "venv"], check=True)
        subprocess.run([home / "venv" / "bin" / "pip", "install", "-q", "--disable-pip-version-check",
                        f"{source}[sink]", "fastapi", "uvicorn", "gunicorn"], check=True)
        (home / "ready").touch()
    return home / "venv" / "bin"


class ExampleApi:
    """examples/sparklio_api as its README runs it (gunicorn -c gunicorn.conf.py: uvicorn workers, one
    multiprocess directory) on a free loopback port."""

    def __init__(self, venv: Path, tmp: Path, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.port, self.log = free_port(), tmp / "sparklio-api.log"
        environment = {key: value for key, value in os.environ.items() if not key.startswith("SPARKLIO_SERVICE_METRICS")}
        environment.update({"PROMETHEUS_MULTIPROC_DIR": str(tmp / "multiproc"), "SPARKLIO_API_BIND": f"127.0.0.1:{self.port}",
                            "SPARKLIO_API_WORKERS": str(workers), **(env or {})})
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([venv / "gunicorn", "-c", EXAMPLE / "gunicorn.conf.py"], env=environment,
                                         stdout=out, stderr=subprocess.STDOUT)

    def request(self, method: str, path: str) -> int:
        """One request on a connection of its own (the server closes one after an exception in the app)."""
        connection = HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def ready(self) -> bool:
        """/metrics answers (gunicorn gone fails at once)."""
        assert self.proc.poll() is None, f"gunicorn exited: {self.log.read_text()[-3000:]}"
        try:
            return self.request("GET", "/metrics") == 200
        except (OSError, HTTPException):
            return False

    def stop(self) -> int:
        """SIGTERM (gunicorn's graceful stop: each worker exits normally, its atexit hooks run); the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def until(condition: Callable[[], object], seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


# --- the rules and their promtool unit tests ---------------------------------------------------------------

API_RULES = MONITORING / "rules" / "api.yml"
API_TESTS = MONITORING / "tests" / "api_test.yml"


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def api_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(API_RULES.read_text())["groups"] for rule in group["rules"]]


@needs_promtool
def test_the_api_rules_check_and_prometheus_yml_loads_them():
    done = promtool("check", "rules", *sorted(str(p) for p in (MONITORING / "rules").glob("*.yml")
                                                if not p.name.endswith("_test.yml")))
    assert done.returncode == 0 and "SUCCESS: 10 rules found" in done.stdout, done.stdout + done.stderr
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert "rules/api.yml" in config["rule_files"]
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "sparklio-api"]
    assert job["static_configs"] == [{"targets": ["sparklio-api:8000"]}]
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0 and "2 rule files found" in done.stdout, done.stdout + done.stderr


def test_every_api_alert_has_severity_summary_runbook_and_a_unit_test_that_fires_it():
    alerts = [rule for rule in api_rules() if "alert" in rule]
    assert {rule["alert"] for rule in alerts} == {"ApiHttp5xxRatioHigh", "ApiLatencyP95High", "ApiSaturated", "ApiDown"}
    tests = yaml.safe_load(API_TESTS.read_text())["tests"]
    fired = {check["alertname"] for test in tests for check in test["alert_rule_test"] if check["exp_alerts"]}
    silent = [test["name"] for test in tests if not any(check["exp_alerts"] for check in test["alert_rule_test"])]
    for rule in alerts:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"], rule["alert"]
    assert fired == {rule["alert"] for rule in alerts}
    assert len(silent) >= 4  # idle nights (one 500, all failing), a brief 5xx spike, a brief slowness
    assert not list((MONITORING / "rules").glob("api_test*")), "the unit tests live in monitoring/tests/"


@needs_promtool
def test_promtool_unit_tests_of_the_api_rules_pass():
    done = promtool("test", "rules", "api_test.yml", cwd=MONITORING / "tests")
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


@needs_promtool
def test_the_api_unit_tests_fail_against_rules_without_their_guards(tmp_path):
    """The unit tests can fail: without the traffic guards an idle night and a quiet slow route page, without
    `for` a brief spike does."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    shutil.copy(API_TESTS, tmp_path / "tests")
    text = API_RULES.read_text()
    for broken, failure in ((text.replace(" * 300 >= 100", " * 300 >= 0"), "ApiHttp5xxRatioHigh, time: 34m"),
                            (text.replace(" * 300 >= 50", " * 300 >= 0"), "ApiLatencyP95High, time: 12m"),
                            (text.replace("for: 5m", "for: 0m"), "ApiHttp5xxRatioHigh, time: 15m")):
        (tmp_path / "rules" / "api.yml").write_text(broken)
        done = promtool("test", "rules", "api_test.yml", cwd=tmp_path / "tests")
        assert done.returncode != 0 and failure in done.stdout + done.stderr, done.stdout


# --- a real Prometheus and Alertmanager ----------------------------------------------------------------

def query(prometheus: str, expr: str) -> list[dict]:
    return requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()["data"]["result"]


@pytest.mark.slow
@pytest.mark.skipif(not (BINARIES["prometheus"] and BINARIES["prometheus-alertmanager"]),
                    reason="Debian's prometheus and prometheus-alertmanager: make system-packages")
def test_real_prometheus_fires_the_5xx_alert_through_alertmanager(tmp_path_factory, tmp_path):
    venv = example_venv(tmp_path_factory)
    api = ExampleApi(venv, tmp_path, workers=2)
    ports = {"prometheus": free_port(), "alertmanager": free_port(), "sparklio-api": api.port, "webhook": free_port(),
             "smtp": free_port()}
    prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    logs = [tmp_path / "prometheus.log", tmp_path / "alertmanager.log", api.log]
    prometheus_yml = prometheus_config(tmp_path, ports, rules_for_the_test(tmp_path, API_RULES))
    assert [job["job_name"] for job in yaml.safe_load(prometheus_yml.read_text())["scrape_configs"]] == ["sparklio-api"]
    api_series = '{job="sparklio-api", endpoint!="/metrics"}'
    try:
        with http_server(ports["webhook"]) as webhook, smtp_server(ports["smtp"]), \
                process([BINARIES["prometheus-alertmanager"], f"--config.file={alertmanager_config(tmp_path, ports)}",
                         f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                         "--cluster.listen-address="], logs[1]), \
                process([BINARIES["prometheus"], f"--config.file={prometheus_yml}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                         f"--web.listen-address=127.0.0.1:{ports['prometheus']}"], logs[0]):
            wait_for("the example app answering", api.ready, BUSY, logs)
            wait_for("Prometheus scraping the example app", lambda: scalar(prometheus, 'up{job="sparklio-api"}') == 1,
                     BUSY, logs)

            # every series the test grows exists first (a counter's first sample is no increase) ...
            assert api.request("GET", "/projects/1") == 200
            assert api.request("GET", "/projects/0") == 404
            assert api.request("POST", "/workflows/1/run?fail=true") == 500
            wait_for("the first 3 requests scraped", lambda: scalar(
                prometheus, f"sum(sparklio_http_requests_total{api_series})") == 3, BUSY, logs)
            # ... then the idle-night guard holds live: 1 of 10 requests failing (10 %), too few to page
            for n in range(2, 11):
                assert api.request("GET", f"/projects/{n}") == 200
            assert api.request("POST", "/workflows/2/run?fail=true") == 500
            wait_for("the next 10 scraped and the 5xx ratio recorded above 5 %", lambda: scalar(
                prometheus, f"sum(sparklio_http_requests_total{api_series})") == 13
                and scalar(prometheus, "sparklio:http_5xx_ratio:rate5m") > 0.05, BUSY, logs)
            assert alert_states(prometheus, "ApiHttp5xxRatioHigh") == set()  # evaluated in the same group, after

            # ten project ids, one series: the route template, never the path
            projects = query(prometheus, 'sparklio_http_requests_total{job="sparklio-api", method="GET", '
                                         'status_code="200", endpoint=~"/projects.*"}')
            assert [(r["metric"]["endpoint"], r["value"][1]) for r in projects] == [("/projects/{project_id}", "10")]
            assert query(prometheus, '{job="sparklio-api", endpoint=~".*[0-9].*"}') == []
            assert len(query(prometheus, 'sparklio_http_request_duration_seconds_count{job="sparklio-api", '
                                         'endpoint="/projects/{project_id}"}')) == 1

            # the burst: 120 answered, 60 failing (5xx 33 %, 190 requests over the 5 minutes)
            for n in range(120):
                assert api.request("GET", f"/projects/{1000 + n}") == 200
            for n in range(60):
                assert api.request("POST", f"/workflows/{n}/run?fail=true") == 500
            seen: set[str] = set()

            def firing() -> bool:
                seen.update(alert_states(prometheus, "ApiHttp5xxRatioHigh"))
                return "firing" in seen

            # each step waits for the event before it (the caps only bound a failure, on a busy machine)
            wait_for("Prometheus scraping the burst's 60 errors", lambda: scalar(
                prometheus, 'sum(sparklio_http_requests_total{job="sparklio-api", status_code="500"})') == 62,
                BUSY, logs)
            wait_for("ApiHttp5xxRatioHigh firing", firing, BUSY, logs)
            assert "pending" in seen  # pending first, for its `for`
            wait_for("the webhook receiving ApiHttp5xxRatioHigh", lambda: webhook_got(webhook, "ApiHttp5xxRatioHigh"),
                     BUSY, logs)
            (alert,) = [a for body in webhook.received for a in body["alerts"]
                        if a["labels"]["alertname"] == "ApiHttp5xxRatioHigh" and a["status"] == "firing"][:1]
            assert alert["labels"]["severity"] == "critical" and "above 5 %" in alert["annotations"]["summary"]
            assert len(query(prometheus, 'sparklio_http_requests_total{job="sparklio-api", method="GET", '
                                         'status_code="200", endpoint=~"/projects.*"}')) == 1  # 130 ids, one series
            for name in ("ApiLatencyP95High", "ApiSaturated", "ApiDown"):
                assert alert_states(prometheus, name) == set(), name

            # every query of the API Performance dashboard answers with data from this scrape
            for expr in dashboard_queries():
                assert query(prometheus, expr.replace("$__rate_interval", "10m")), expr
    finally:
        api.stop()


# --- the API Performance dashboard (Grafana), checked offline -------------------------------------------

API_DASHBOARD = GRAFANA / "dashboards" / "service" / "sparklio-api.json"


def builder():
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_queries() -> list[str]:
    board = json.loads(API_DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def test_the_committed_api_dashboard_is_what_the_code_builds():
    build = builder()
    assert set(build.SERVICE_DASHBOARDS) == {"service/sparklio-api.json"}
    for name, make in build.SERVICE_DASHBOARDS.items():
        assert (GRAFANA / "dashboards" / name).read_text() == build.render(make), \
            f"{name} is stale: run .venv/bin/python monitoring/grafana/build_dashboards.py"
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/sparklio.yml").read_text())["providers"][0]
    assert provider["type"] == "file"  # Grafana's file provider reads the service/ subfolder too


def test_the_api_dashboard_picks_its_prometheus_describes_its_panels_and_draws_the_alert_thresholds():
    board = json.loads(API_DASHBOARD.read_text())
    assert board["title"] == "API Performance" and board["uid"] and board["schemaVersion"] >= 39
    (variable,) = board["templating"]["list"]
    assert (variable["type"], variable["name"], variable["query"]) == ("datasource", "datasource", "prometheus")
    panels = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"] and panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["targets"] and all(t["refId"] for t in panel["targets"]), panel["title"]
        assert all("[$__rate_interval]" in t["expr"] for t in panel["targets"] if "rate(" in t["expr"]), panel["title"]
    titles = {panel["title"] for panel in panels}
    assert {"Requests per second by route", "p50 latency by route", "p95 latency by route", "p99 latency by route",
            "Error ratio, 5xx and 4xx apart", "Requests in progress by route"} <= titles

    alerts = {rule["alert"]: rule["expr"] for rule in api_rules() if "alert" in rule}
    drawn = {panel["title"]: panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] for panel in panels
             if "thresholds" in panel["fieldConfig"]["defaults"]}
    build = builder()
    assert f"sparklio:http_5xx_ratio:rate5m > {build.API_5XX_RATIO:g}" in alerts["ApiHttp5xxRatioHigh"]
    assert f"p95_5m > {build.API_P95_SECONDS:g}" in alerts["ApiLatencyP95High"]
    assert f":sum > {build.API_IN_PROGRESS:g}" in alerts["ApiSaturated"]
    assert drawn == {"5xx ratio": 0.05, "Error ratio, 5xx and 4xx apart": 0.05, "p95 latency, all routes": 2.5,
                     "p95 latency by route": 2.5, "Requests in progress": 50, "Requests in progress per instance": 50}


@needs_promtool
def test_every_api_dashboard_query_parses(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, expr in enumerate(dashboard_queries())]}]}
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(tmp_path / "queries.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    named = set(re.findall(r"sparklio_\w+", " ".join(dashboard_queries())))
    assert named == {"sparklio_http_requests_total", "sparklio_http_request_duration_seconds_bucket",
                     "sparklio_http_requests_in_progress"}
