"""Superset's public REST API over HTTP, one client for the tests, `sparklio-bi bench` and
`alerts sync`: a person's login through the form (cookie and CSRF token, as a browser has them)
or a bearer token (logged in again when it expires), and the calls every user of the API makes.
Nothing here imports Superset: it is the API's own contract."""
from __future__ import annotations

import re

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sparklio_bi.errors import ExpectedError

# A keep-alive connection the server closes as the next request goes out is reset ("Connection reset by
# peer"; gunicorn keeps an idle one 2 s, a busy client can pause longer): an idempotent call is sent
# again on a new connection, twice at most. Answers, errors included, are never retried.
RESENT = Retry(total=2, connect=2, read=2, status=0, other=0, allowed_methods={"GET", "HEAD", "OPTIONS"},
               backoff_factor=0.2, raise_on_status=False)


def _resending(session: requests.Session) -> requests.Session:
    for prefix in ("http://", "https://"):
        session.mount(prefix, HTTPAdapter(max_retries=RESENT))
    return session


class RestError(ExpectedError):
    """Superset answered an API call with an error, or a login failed."""


def form_login(base: str, username: str, password: str) -> requests.Session:
    """A person's login through the login form, as a browser does: the session cookie, and the
    page's CSRF token (in the session's headers) for the posts the UI makes."""
    session = _resending(requests.Session())
    page = session.get(f"{base}/login/", timeout=30).text
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"|"csrf_token":\s*"([^"]+)"', page)
    if not found:
        raise RestError(f"{base}/login/ has no CSRF token: is it Superset?")
    token = next(g for g in found.groups() if g)
    response = session.post(f"{base}/login/", data={"username": username, "password": password,
                                                    "csrf_token": token}, timeout=30, allow_redirects=False)
    if response.status_code != 302 or "session" not in session.cookies \
            or session.get(f"{base}/api/v1/me/", timeout=30).status_code != 200:
        raise RestError(f"login as {username} on {base} failed (status {response.status_code})")
    session.headers.update({"X-CSRFToken": token, "Referer": base})
    session.base = base
    return session


class TokenSession(requests.Session):
    """A user through the REST API with a bearer token, logged in again when the token has
    expired (Flask-AppBuilder's 15 minutes: a test suite or a long run outlives one)."""

    def __init__(self, base: str, username: str, password: str) -> None:
        super().__init__()
        _resending(self)
        self.base = base
        self._credentials = {"username": username, "password": password, "provider": "db", "refresh": True}
        self.log_in()

    def log_in(self) -> None:
        response = super().request("POST", f"{self.base}/api/v1/security/login", timeout=30, json=self._credentials)
        if response.status_code != 200:
            raise RestError(f"API login as {self._credentials['username']} on {self.base} failed "
                            f"(status {response.status_code})")
        self.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 401 and "Token has expired" in response.text:
            self.log_in()
            response = super().request(method, url, *args, **kwargs)
        return response


def get(session: requests.Session, url: str, **kwargs) -> requests.Response:
    """GET `url`; anything but 200 raises RestError."""
    response = session.get(url, timeout=kwargs.pop("timeout", 120), **kwargs)
    if response.status_code != 200:
        raise RestError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return response


def post(session: requests.Session, url: str, body: dict, headers: dict) -> requests.Response:
    """POST `body` as JSON to `url`; anything but 200 raises RestError."""
    response = session.post(url, json=body, headers=headers, timeout=120)
    if response.status_code != 200:
        raise RestError(f"POST {url}: {response.status_code} {response.text[:300]}")
    return response


def csrf_headers(base: str, session: requests.Session) -> dict:
    """The CSRF header Superset wants on posts (a form login already has it in its headers)."""
    if "X-CSRFToken" in session.headers:
        return {}
    token = get(session, f"{base}/api/v1/security/csrf_token/").json()["result"]
    return {"X-CSRFToken": token, "Referer": base}


def listing(base: str, session: requests.Session, kind: str) -> list[dict]:
    """The first 100 objects of `kind` (chart, dataset, dashboard, database) the user may see."""
    return get(session, f"{base}/api/v1/{kind}/?q=(page_size:100)").json()["result"]


def clone(session: requests.Session, extra_headers: dict) -> requests.Session:
    """A session of its own for a worker thread, with the same login."""
    copy = requests.Session()
    copy.headers.update(session.headers)
    copy.headers.update(extra_headers)
    copy.cookies.update(session.cookies)
    return copy
