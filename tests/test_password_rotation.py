"""Issue 31, finding 4: the reader's password changed while `serve` runs (what bootstrap does on
its own after finding an exposed password) reaches every running part: the serve's PgBouncer
(its auth file, reloaded), Superset's kept engines, the KPI exporter; every chart keeps
answering. A module of its own: the rotation changes the password every later reader URL holds."""
from __future__ import annotations

import re
import subprocess
import time

import pytest
import requests

from sparklio_bi.postgres import pooler
from tests.conftest import CLI, api_list, artifact, cli, free_port

pytestmark = pytest.mark.skipif(pooler.binary() is None, reason="make test installs Debian's pgbouncer")


def rounds(base: str) -> tuple[float, float]:
    """(rounds run, failed queries counted) of the exporter at `base`."""
    text = requests.get(f"{base}/metrics", timeout=30).text
    ran = float(re.search(r"^sparklio_exporter_rounds_total (\S+)$", text, re.M).group(1))
    failed = sum(float(v) for v in re.findall(r"^sparklio_exporter_query_errors_total\{[^}]*\} (\S+)$", text, re.M))
    return ran, failed


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} within {seconds:g} s")


def test_a_new_reader_password_reaches_every_running_part(api, server, settings):
    port = free_port()
    log = open(artifact("rotation-exporter.log"), "wb")
    exporter = subprocess.Popen([*CLI, "metrics", "serve", "--port", str(port), "--interval", "1"],
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base) and rounds(base)[0] >= 1, 120, "the exporter did not run a round")
        charts = api_list(api, "chart")
        assert all(_chart(api, c["id"]) == 200 for c in charts)  # Superset's engines and PgBouncer logged in

        old = (settings.data_dir / "pg-reader-password").read_text()
        (settings.data_dir / "pg-reader-password").unlink()
        done = cli("bootstrap", "--no-serve", "--scale", "3")
        assert (settings.data_dir / "pg-reader-password").read_text() != old
        assert "the running PgBouncer reloaded the reader's password" in done.stdout + done.stderr

        failed = {c["slice_name"]: code for c in charts if (code := _chart(api, c["id"])) != 200}
        assert failed == {}, failed
        after, _ = rounds(base)  # a round that overlapped the rotation itself may have failed
        wait_for(lambda: rounds(base)[0] >= after + 2, 120, "the exporter ran no round after the rotation")
        ran, errors_now = rounds(base)
        wait_for(lambda: rounds(base)[0] >= ran + 2, 120, "the exporter stopped running rounds")
        assert rounds(base)[1] == errors_now, "the exporter's rounds fail after the rotation"
    finally:
        exporter.terminate()
        exporter.wait(30)


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/metrics", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _chart(api, chart_id: int) -> int:
    return api.get(f"{api.base}/api/v1/chart/{chart_id}/data/?force=true", timeout=120).status_code
