"""Issue 31, finding 9: with SPARKLIO_TIMEZONE=Asia/Seoul the dashboards print Seoul's wall clock,
not UTC: an install of its own in Seoul (its own database, reader role and Superset metadata on
the session's server), the latest failures table opened in headless Chromium."""
from __future__ import annotations

import os
from datetime import timezone
from zoneinfo import ZoneInfo

import pytest

from sparklio_bi.postgres import database
from tests.conftest import ADMIN_PASSWORD, TokenSession, api_list, cli, start_server
from tests.test_superset import open_browser

SEOUL = ZoneInfo("Asia/Seoul")
pytestmark = pytest.mark.slow  # an install of its own: bootstrap and a server, about a minute


@pytest.fixture(scope="module")
def seoul_server(make_database, tmp_path_factory, settings):
    url, metadata = make_database("seoul"), make_database("seoul_meta")
    env = dict(os.environ, DATABASE_URL=url, SUPERSET_DATABASE_URL=metadata, SPARKLIO_TIMEZONE="Asia/Seoul",
               SPARKLIO_DATA_DIR=str(tmp_path_factory.mktemp("seoul-data")), SPARKLIO_READER_ROLE="seoul_reader",
               SPARKLIO_READER_PASSWORD="Seoul-reader-password-81", SUPERSET_SECRET_KEY="Rt7vQe2LmX9pZk4WsB6nHc1JdF8gYa3U",
               SUPERSET_ADMIN_PASSWORD=ADMIN_PASSWORD, SPARKLIO_POOLER="none")
    cli("bootstrap", "--no-serve", "--demo", "--scale", "0.5", env=env)
    proc, base = start_server("--collect-interval", "0", log_name="seoul-server.log", env=env)
    yield url, base
    proc.terminate()
    proc.wait(30)


def test_the_latest_failures_table_shows_seoul_times(seoul_server):
    from selenium.webdriver.common.by import By

    from sparklio_bi.quality.browser import wait_for_charts

    url, base = seoul_server
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select created_at from analytics.errors order by created_at desc limit 1")
        newest = cur.fetchone()[0]
    seoul, utc = (newest.astimezone(zone).strftime("%H:%M:%S") for zone in (SEOUL, timezone.utc))
    browser = open_browser(base, "admin", ADMIN_PASSWORD, profile="chromium-profile-seoul")
    try:
        api = TokenSession(base, "admin", ADMIN_PASSWORD)
        dashboard = next(d for d in api_list(api, "dashboard") if d["dashboard_title"] == "Errors & Exceptions")
        charts = api.get(f"{base}/api/v1/dashboard/{dashboard['id']}/charts", timeout=30).json()["result"]
        browser.get(f"{base}/superset/dashboard/{dashboard['id']}/")
        wait_for_charts(browser, len(charts))
        body = browser.find_element(By.TAG_NAME, "body").text
    finally:
        browser.quit()
    assert seoul in body, f"{seoul} (Seoul) not on the page; UTC {utc} {'is' if utc in body else 'is not'}"
    assert utc not in body
