"""sparklio-instrument seen by a real Prometheus (issue 32): the example app (examples/sparklio_api, gunicorn
with two uvicorn workers, multiprocess mode) on loopback, scraped by Debian's Prometheus 2.42 every second
with monitoring/rules/api.yml (its `for` cut to seconds, the windows and thresholds kept), alerting through
a real Alertmanager 0.25 to a loopback webhook. A burst of 5xx fires ApiHttp5xxRatioHigh (pending, then
firing, then delivered); ten distinct project ids are one series; every query of the API Performance
dashboard answers with data. The rules' promtool unit tests (monitoring/tests/api_test.yml) and the
dashboard's offline checks are here too.

Every wait returns on its event; the caps (BUSY, 180 s) only bound a failure on a busy machine."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from http.client import HTTPConnection, HTTPException
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

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
