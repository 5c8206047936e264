"""The bench's Superset REST client: a logged-in requests session, CSRF, listings, chart data."""
from __future__ import annotations

import requests

from sparklio_bi.quality.bench.harness import BenchError


def get(session: requests.Session, url: str, **kwargs) -> requests.Response:
    response = session.get(url, timeout=kwargs.pop("timeout", 120), **kwargs)
    if response.status_code != 200:
        raise BenchError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return response


def post(session: requests.Session, url: str, body: dict, headers: dict) -> requests.Response:
    response = session.post(url, json=body, headers=headers, timeout=120)
    if response.status_code != 200:
        raise BenchError(f"POST {url}: {response.status_code} {response.text[:300]}")
    return response


def csrf_headers(base: str, session: requests.Session) -> dict:
    """The CSRF header Superset wants on posts (a form login already has it in its headers)."""
    if "X-CSRFToken" in session.headers:
        return {}
    token = get(session, f"{base}/api/v1/security/csrf_token/").json()["result"]
    return {"X-CSRFToken": token, "Referer": base}


def listing(base: str, session: requests.Session, kind: str) -> list[dict]:
    return get(session, f"{base}/api/v1/{kind}/?q=(page_size:100)").json()["result"]


def clone(session: requests.Session, extra_headers: dict) -> requests.Session:
    """A session of its own for a worker thread, with the same login."""
    clone = requests.Session()
    clone.headers.update(session.headers)
    clone.headers.update(extra_headers)
    clone.cookies.update(session.cookies)
    return clone
