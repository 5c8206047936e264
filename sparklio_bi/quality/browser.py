"""Headless Debian Chromium on the bundle's Superset, shared by the tests and `sparklio-bi bench`:
a browser holding a person's session (rest.form_login), and waiting for a dashboard's charts to
be drawn."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from sparklio_bi.errors import ExpectedError

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1600,2400")
CHART_HOLDER = '[data-test="dashboard-component-chart-holder"]'
LOADING = '[data-test="loading-indicator"], .loading'
DRAWN = "canvas, svg, table, .header-line, .big_number, [role='alert']"


class BrowserError(ExpectedError):
    """Chromium or its driver is missing."""


def open_browser(base: str, session_cookie: str, user_data_dir: Path):
    """Headless Chromium with its profile in `user_data_dir`, holding the session cookie of a
    logged-in person (see form_login)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        raise BrowserError("Debian's chromium and chromium-driver are needed "
                           "(apt-get install chromium chromium-driver; make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.get(f"{base}/health")
    driver.add_cookie({"name": "session", "value": session_cookie, "path": "/"})
    return driver


def wait_for_charts(driver, expected: int, timeout: float = 90, poll: float = 1.0) -> None:
    """Wait until `expected` charts of the open dashboard are drawn (a canvas, svg, table, big
    number or an alert in each holder) and nothing is loading; AssertionError past `timeout`."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    drawn, holders, loading = [], [], []
    while time.monotonic() < deadline:
        try:
            holders = driver.find_elements(By.CSS_SELECTOR, CHART_HOLDER)
            loading = driver.find_elements(By.CSS_SELECTOR, LOADING)
            drawn = [h for h in holders if h.find_elements(By.CSS_SELECTOR, DRAWN)]
        except StaleElementReferenceException:  # the dashboard re-rendered under us
            time.sleep(poll)
            continue
        if len(drawn) == expected and not loading:  # holders also hold the markdown header
            return
        time.sleep(poll)
    raise AssertionError(f"only {len(drawn)} of {expected} charts drew within {timeout:.0f}s "
                         f"({len(holders)} holders, {len(loading)} still loading)")
