"""End to end against a real Superset: `sparklio-bi bootstrap` into the test session's embedded
PostgreSQL, `sparklio-bi serve` on a free port, then the chart data API, headless Chromium on
every dashboard, the zipped bundle through `superset import-dashboards`, and the export round trip.

Screenshots go to test-artifacts/screenshots/ (or $SPARKLIO_SCREENSHOTS)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import yaml

from sparklio_bi.postgres import database
from sparklio_bi.quality.bench.harness import BootstrapEvents
from sparklio_bi.quality.browser import open_browser as open_chromium
from sparklio_bi.quality.browser import wait_for_charts
from sparklio_bi.quality.reference import (
    CHART_FILES,
    CHARTS,
    DASHBOARDS,
    VOLATILE,
    at_the_charts_now,
    chart_rows,
    chart_titles,
    compare_chart,
)
from sparklio_bi.quality.reference import run_reference as reference
from sparklio_bi.superset import assets
from sparklio_bi.warehouse import collect
from tests.conftest import ADMIN_PASSWORD, SCREENSHOTS, api_list, chart_ids, cli, csrf_header, form_login

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"


def test_bootstrap_is_idempotent_and_quicker_the_second_time(bootstrapped, api):
    assert "created 'admin'" in bootstrapped["first"].stdout
    assert "==> 4/7 demo data" in bootstrapped["first"].stdout and "==> ready in " in bootstrapped["first"].stdout
    events = [json.loads(line) for line in bootstrapped["second"].stdout.splitlines()]  # --progress json: only events
    steps = {e["step"]: e for e in events if e["event"] == "step"}
    assert sorted(steps) == list(range(1, 8)) and all(e["of"] == 7 for e in steps.values())
    assert steps[4]["outcome"] == "kept"  # demo data not reseeded
    assert {"event": "note", "step": 6, "text": "'admin' exists, unchanged"}.items() <= \
        next(e for e in events if e["event"] == "note" and e["step"] == 6).items()
    assert events[-1]["event"] == "ready" and [e["seconds"] for e in events] == sorted(e["seconds"] for e in events)
    read = BootstrapEvents()  # what the benchmark makes of them
    shown = [read.feed(line) for line in bootstrapped["second"].stdout.splitlines()]
    assert sorted(read.steps) == list(range(1, 8)) and not read.seeded and read.seed_done is None
    assert "  4/7 demo data: source tables have rows, kept (use --reseed to replace them)" in shown
    assert bootstrapped["second_seconds"] < bootstrapped["first_seconds"]
    assert len(api_list(api, "dashboard")) == len(DASHBOARDS)
    assert len(api_list(api, "chart")) == len(CHARTS)
    assert sorted(d["database_name"] for d in api_list(api, "database")) == ["Sparklio Analytics", "Sparklio Server Health"]
    assert len(api_list(api, "dataset")) == len(list((ASSETS / "datasets").glob("*/*.yaml")))
    before, after = bootstrapped["fingerprints"]
    changed = sorted(name for name in before if before[name] != after[name])
    assert not changed, f"the second bootstrap changed {changed}"
    assert before["superset.slices"][0] == len(CHARTS) and before["public.agent_logs"][0] > 0


def test_server_serves_login_page(server):
    assert requests.get(f"{server}/login/", timeout=30).status_code == 200


@pytest.mark.parametrize("chart", [c for c in CHARTS if c.key not in VOLATILE], ids=lambda c: f"{c.key} {c.title}")
def test_chart_data_api_matches_reference(api, bootstrapped, chart):
    ids = chart_ids(api)
    assert_chart_matches_reference(api, bootstrapped["url"], chart, ids[chart_titles()[chart.key]])


def test_connections_chart_shows_the_reference_count_at_a_minute_the_test_samples(api, bootstrapped, settings):
    """5.1: a sample written for a minute 12 hours ago shows in the chart as the reference's
    count(*) from pg_stat_activity taken in the same snapshot (the live minutes keep moving)."""
    chart = next(c for c in CHARTS if c.key == "5.1")
    url = bootstrapped["url"]
    with database.connect(url) as conn, conn.cursor() as cur:  # one transaction: one pg_stat_activity snapshot
        cur.execute("select date_trunc('minute', now()) - interval '12 hours'")
        minute = cur.fetchone()[0]
        cur.execute("select count(*) from analytics.system_samples "
                    "where sampled_at >= %s and sampled_at < %s + interval '1 minute'", (minute, minute))
        assert cur.fetchone()[0] == 0, f"{minute} already has samples"
        cur.execute(chart.reference)
        expected = cur.fetchone()[0]
        cur.executemany("insert into analytics.system_samples (sampled_at, metric, dimension, value) "
                        "values (%s, %s, %s, %s)", [(minute, *row) for row in collect.postgres_samples(cur, settings)])
    try:
        chart_id = chart_ids(api)[chart_titles()["5.1"]]
        response = api.get(f"{api.base}/api/v1/chart/{chart_id}/data/?force=true", timeout=60)
        assert response.status_code == 200, response.text[:500]
        shown = {row[0]: row[1:] for row in chart_rows(response.json())}
        assert minute in shown, f"no point at {minute} among {sorted(shown)}"
        assert sum(v for v in shown[minute] if v is not None) == expected, \
            f"the chart shows {shown[minute]} at {minute}; pg_stat_activity held {expected} connections"
    finally:
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("delete from analytics.system_samples where sampled_at = %s", (minute,))


def test_connections_chart_keeps_every_minute_of_a_full_day(api, bootstrapped):
    """5.1 over its whole window: a day of one-minute samples in 8 states (11,520 rows, more than
    Superset's default chart row limit of 10,000) shows every minute of every state."""
    states = [f"test-state-{i}" for i in range(8)]
    with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
        cur.execute("select date_trunc('minute', now())")
        now = cur.fetchone()[0]
        # inside "last day" with 2 minutes to spare (the window starts when the request runs,
        # up to a minute or more after `now`, which is cut to the minute), clear of 12 h ago
        minutes = [now - timedelta(minutes=m) for m in range(20, 1438)]
        minutes = [m for m in minutes if m != now - timedelta(hours=12)]
        cur.executemany("insert into analytics.system_samples (sampled_at, metric, dimension, value) "
                        "values (%s, 'pg_connections', %s, 1)", [(m, s) for m in minutes for s in states])
    try:
        chart_id = chart_ids(api)[chart_titles()["5.1"]]
        response = api.get(f"{api.base}/api/v1/chart/{chart_id}/data/?force=true", timeout=120)
        assert response.status_code == 200, response.text[:500]
        result = response.json()["result"][0]
        shown = {record["sampled_at"]: record for record in result["data"]}
        missing = [m for m in minutes if any(shown.get(int(m.timestamp() * 1000), {}).get(s) != 1 for s in states)]
        assert not missing, f"{len(missing)} of {len(minutes)} minutes lack a state (row limit {result['rowcount']})"
    finally:
        with database.connect(bootstrapped["url"]) as conn, conn.cursor() as cur:
            cur.execute("delete from analytics.system_samples where dimension like 'test-state-%'")


def assert_chart_matches_reference(session, url: str, chart, chart_id: int, search_path: str = "public") -> None:
    """The chart's data through the API, as `session`'s user, equals the reference SQL run on
    `url` with `search_path` (a schema of brand-restricted tables, say)."""
    for _ in range(3):
        response = session.get(f"{session.base}/api/v1/chart/{chart_id}/data/?force=true", timeout=60)
        assert response.status_code == 200, response.text[:500]
        actual = chart_rows(response.json())
        assert actual, f"chart {chart.key} returned no rows"
        sql = at_the_charts_now(chart.reference, response.json())  # now() = the end of the chart's filter
        before = reference(url, sql, search_path)
        after = reference(url, sql, search_path)
        if before == after:
            break  # no row arrived between the two
    compare_chart(chart, before, response.json(), url)


# --- the browser ----------------------------------------------------------------------------

ERROR_TEXTS = ("Unexpected error", "No results were returned", "Error:", "Data error",
               "An error occurred", "is not a valid", "Not found")


def open_browser(server: str, username: str, password: str, profile: str = "chromium-profile"):
    """Headless Debian Chromium holding `username`'s session (logged in through the form)."""
    session = form_login(server, username, password)
    # a profile of its own each time: a Chromium left running by an interrupted session holds its
    # profile, and a second Chromium on the same one exits at once ("session not created")
    return open_chromium(server, session.cookies["session"], Path(tempfile.mkdtemp(prefix=f"{profile}-")))


@pytest.fixture(scope="module")
def browser(server):
    driver = open_browser(server, "admin", ADMIN_PASSWORD)
    yield driver
    driver.quit()


@pytest.mark.parametrize("index", range(len(DASHBOARDS)))
def test_dashboard_renders_every_chart_in_chromium(api, browser, index):
    dashboards = sorted(api_list(api, "dashboard"), key=lambda d: d["dashboard_title"])
    assert_dashboard_renders(browser, api, dashboards[index])


def assert_dashboard_renders(browser, api, dashboard: dict, screenshot_suffix: str = "") -> None:
    """Every chart of the dashboard drawn in the browser, no error shown; a screenshot kept."""
    from selenium.webdriver.common.by import By

    charts = api.get(f"{api.base}/api/v1/dashboard/{dashboard['id']}/charts", timeout=30).json()["result"]
    browser.get(f"{api.base}/superset/dashboard/{dashboard['id']}/")
    wait_for_charts(browser, len(charts))
    time.sleep(2)  # let animations settle for the screenshot
    name = re.sub(r"[^a-z0-9]+", "-", dashboard["dashboard_title"].lower()).strip("-")
    browser.save_screenshot(str(SCREENSHOTS / f"{name}{screenshot_suffix}.png"))
    alerts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[role='alert'], .ant-alert-error")]
    assert not [a for a in alerts if a.strip()], f"{dashboard['dashboard_title']}: {alerts}"
    body = browser.find_element(By.TAG_NAME, "body").text
    for text in ERROR_TEXTS:
        assert text not in body, f"{dashboard['dashboard_title']} shows {text!r}"


# --- the bundle through Superset's own CLI, and the round trip --------------------------------

@pytest.mark.slow  # 20-55 s: `pytest -m 'not slow'` leaves it out of the inner loop
def test_zip_imports_with_superset_import_dashboards_on_a_fresh_superset(bootstrapped, make_database, tmp_path):
    bundle = tmp_path / "bundle.zip"
    zipped = cli("assets", "zip", "--with-password", "-o", str(bundle))  # this Superset has no database yet
    assert "holds the password" in zipped.stderr
    assert bundle.stat().st_mode & 0o777 == 0o600
    metadata = make_database("fresh_superset")
    env = dict(os.environ, SUPERSET_DATABASE_URL=metadata, SUPERSET_CONFIG_PATH=str(ROOT / "superset_config.py"),
               SUPERSET_SECRET_KEY="a-fresh-superset-needs-its-own-long-secret-key",
               XDG_RUNTIME_DIR="/tmp")
    superset = str(Path(sys.executable).parent / "superset")
    for args in (["db", "upgrade"], ["init"],
                 ["fab", "create-admin", "--username", "admin", "--firstname", "a", "--lastname", "b",
                  "--email", "a@b.c", "--password", "x"],
                 ["import-dashboards", "-p", str(bundle), "-u", "admin"]):
        done = subprocess.run([superset, *args], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"superset {args[0]}: {done.stderr[-2000:]}"
    with database.connect(metadata) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from dashboards")
        assert cur.fetchone()[0] == len(DASHBOARDS)
        cur.execute("select count(*) from slices")
        assert cur.fetchone()[0] == len(CHARTS)


def git_status(path: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", str(path)], cwd=ROOT,
                          capture_output=True, text=True).stdout


def bundle_files(directory: Path) -> dict[str, object]:
    """Every file under `directory` (relative path -> its parsed YAML)."""
    return {path.relative_to(directory).as_posix(): yaml.safe_load(path.read_text())
            for path in sorted(directory.rglob("*")) if path.is_file()}


def test_import_then_export_writes_every_file_of_the_bundle_back(bootstrapped, tmp_path):
    """Import assets/, export into an empty folder: the same files, UUIDs and content, byte for byte."""
    cli("assets", "import", "--dir", str(ASSETS))
    exported = tmp_path / "exported"
    done = cli("assets", "export", "--dir", str(exported))
    want, got = bundle_files(ASSETS), bundle_files(exported)
    datasets = len(list((ASSETS / "datasets").glob("*/*.yaml")))
    assert len(want) == 1 + 2 + datasets + len(CHARTS) + len(DASHBOARDS)  # metadata, databases, datasets, charts, dashboards
    assert sorted(got) == sorted(want), f"missing {sorted(want.keys() - got.keys())}, extra {sorted(got.keys() - want.keys())}"
    assert {rel: cfg.get("uuid") for rel, cfg in got.items()} == {rel: cfg.get("uuid") for rel, cfg in want.items()}
    assert [rel for rel in want if got[rel] != want[rel]] == []
    assert f"{len(want)} files written" in done.stdout
    diff = subprocess.run(["diff", "-r", str(ASSETS), str(exported)], capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout[:3000]


def metadata_fingerprint(url: str) -> list:
    with database.connect(url) as conn, conn.cursor() as cur:
        out = []
        for table, columns in (("dashboards", "uuid, dashboard_title, position_json, json_metadata"),
                               ("slices", "uuid, slice_name, viz_type, params, query_context"),
                               ("tables", "uuid, table_name, description"),
                               ("dbs", "uuid, database_name, sqlalchemy_uri")):
            cur.execute(f"select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
                        f"from (select {columns} from {table}) t")
            out.append((table, cur.fetchone()[0]))
        return out


BREAKAGES = {
    "bad YAML": lambda d: _first(d, "charts").write_text("slice_name: [unclosed\n"),
    "dangling UUID": lambda d: _edit(_first(d, "charts"), "dataset_uuid", "00000000-0000-0000-0000-000000000000"),
    "unknown viz_type": lambda d: _edit(_first(d, "charts"), "viz_type", "no_such_viz"),
    "missing dataset": lambda d: (d / "datasets" / "Sparklio_Analytics" / "agent_stats.yaml").unlink(),  # 3 charts use it
}


def _first(directory: Path, sub: str) -> Path:
    return sorted((directory / sub).glob("*.yaml"))[0]


def _edit(path: Path, key: str, value) -> None:
    data = yaml.safe_load(path.read_text())
    data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_bundle_fails_validate_and_import_and_changes_nothing(bootstrapped, settings, tmp_path, breakage):
    broken = tmp_path / "assets"
    shutil.copytree(ASSETS, broken)
    # make a real change too, so a partial import would be visible
    chart = _first(broken, "charts")
    _edit(chart, "slice_name", "Renamed by a broken bundle")
    BREAKAGES[breakage](broken)
    metadata = database.superset_metadata_url(settings)
    before = metadata_fingerprint(metadata)
    assert assets.validate(broken)  # `assets validate` itself: tests/test_bad_input.py
    imported = cli("assets", "import", "--dir", str(broken), check=False)
    assert imported.returncode == 1
    assert str(broken) in imported.stderr  # the problems, each naming its file
    assert imported.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert metadata_fingerprint(metadata) == before


def test_sql_lab_queries_the_analytics_views(api, bootstrapped):
    in_sql_lab = [d for d in api_list(api, "database") if d["expose_in_sqllab"]]
    assert [d["database_name"] for d in in_sql_lab] == ["Sparklio Analytics"]  # the server-health one is for dashboard 5
    response = api.post(f"{api.base}/api/v1/sqllab/execute/", timeout=60, headers=csrf_header(api),
                        json={"database_id": in_sql_lab[0]["id"], "schema": "analytics", "runAsync": False,
                              "sql": "select status, count(*) as n from analytics.errors group by status"})
    assert response.status_code == 200, response.text[:500]
    got = {row["status"]: row["n"] for row in response.json()["data"]}
    expected = dict(reference(bootstrapped["url"], "select status, count(*) from agent_logs "
                                                   "where status <> 'success' group by status"))
    assert got == expected


def test_a_chart_edited_in_superset_exports_as_a_small_diff(api, bootstrapped, tmp_path):
    """What the UI does on save (PUT the chart's params), then `assets export`: a readable diff."""
    stem = CHART_FILES["2.2"]
    title = chart_titles()["2.2"]
    chart_id = chart_ids(api)[title]
    chart = api.get(f"{api.base}/api/v1/chart/{chart_id}", timeout=30).json()["result"]
    params = json.loads(chart["params"])
    params["y_axis_title"] = "Latency, edited in the UI"
    try:
        response = api.put(f"{api.base}/api/v1/chart/{chart_id}", json={"params": json.dumps(params)},
                           headers=csrf_header(api), timeout=30)
        assert response.status_code == 200, response.text
        exported = tmp_path / "assets"
        shutil.copytree(ASSETS, exported)
        cli("assets", "export", "--dir", str(exported))
        diff = subprocess.run(["diff", "-r", str(ASSETS), str(exported)], capture_output=True, text=True).stdout
        changed = [line for line in diff.splitlines() if line.startswith(("<", ">"))]
        assert f"{stem}.yaml" in diff
        assert any("Latency, edited in the UI" in line for line in changed)
        assert len(changed) <= 4, diff
    finally:
        cli("assets", "import")  # back to what git holds


def test_the_admin_api_logs_in_again_when_its_token_has_expired(api, settings):
    """The suite outlives Flask-AppBuilder's 15-minute access token; the shared `api` session
    logs in again instead of failing every later test with 401 "Token has expired"."""
    import jwt

    from sparklio_bi.superset import secret_key

    past = int(time.time()) - 3600
    expired = jwt.encode({"sub": "1", "type": "access", "fresh": False, "jti": "expired-for-the-test",
                          "iat": past - 60, "nbf": past - 60, "exp": past},
                         secret_key.current_key(settings)[0], algorithm="HS256")
    api.headers["Authorization"] = f"Bearer {expired}"
    assert requests.get(f"{api.base}/api/v1/dashboard/", timeout=30,
                        headers={"Authorization": f"Bearer {expired}"}).text.find("Token has expired") >= 0
    assert len(api_list(api, "dashboard")) == len(DASHBOARDS)
    assert api.headers["Authorization"] != f"Bearer {expired}"
