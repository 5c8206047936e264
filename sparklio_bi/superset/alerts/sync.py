"""Alerts and reports into Superset and back, through its REST API `/api/v1/report/` only,
matched by name: over HTTP to a running Superset (`HttpApi`), or in-process through the Flask
app's test client (`FlaskApi`, what bootstrap uses before serve starts). A sync changes
nothing when Superset already holds what the files say; it removes what the files do not name
only when asked (`prune`)."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from sparklio_bi import config
from sparklio_bi.superset import rest
from sparklio_bi.superset.alerts import definition
from sparklio_bi.superset.alerts.definition import AlertsError, Definition
from sparklio_bi.superset.assets import layout

PAGE = "?q=(page_size:100)"


class Api:
    """Superset's REST API as the admin: call(method, path, body) -> the answer's JSON."""

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        status, answer = self._send(method, path, body)
        if status not in (200, 201):
            raise AlertsError(f"Superset refused {method} {path}: {status} {json.dumps(answer)[:300]}")
        return answer

    def _send(self, method: str, path: str, body: dict | None) -> tuple[int, dict]:
        raise NotImplementedError


class HttpApi(Api):
    """A running Superset over HTTP (`base`: http://127.0.0.1:8088)."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.session = rest.TokenSession(base, username, password)
        self.session.headers.update(rest.csrf_headers(base, self.session))
        self.base = base

    def _send(self, method, path, body):
        response = self.session.request(method, f"{self.base}{path}", json=body, timeout=60)
        return response.status_code, _json(response.text)


class FlaskApi(Api):
    """The same API in-process: the app's test client (Flask's public API), logged in as the admin."""

    def __init__(self, flask_app, username: str, password: str) -> None:
        self.app, self.client, self.headers = flask_app, flask_app.test_client(), {}
        status, answer = self._send("POST", "/api/v1/security/login", {
            "username": username, "password": password, "provider": "db", "refresh": False})
        if status != 200:
            raise AlertsError(f"in-process API login as {username} failed ({status})")
        self.headers = {"Authorization": f"Bearer {answer['access_token']}"}
        token = self.call("GET", "/api/v1/security/csrf_token/")["result"]
        self.headers.update({"X-CSRFToken": token, "Referer": "http://localhost/"})

    def _send(self, method, path, body):
        # each request in an app context of its own, as a server gives it: inside the caller's
        # context Flask would reuse that one, and its `g` (the user of an earlier request)
        with self.app.app_context():
            answer = self.client.open(path, method=method, json=body, headers=self.headers)
            return answer.status_code, _json(answer.get_data(as_text=True))


def _json(text: str) -> dict:
    try:
        return json.loads(text)
    except ValueError:
        return {"text": text[:300]}


def reports(api: Api) -> dict[str, dict]:
    """Superset's alerts and reports by name (the list's fields)."""
    status, answer = api._send("GET", f"/api/v1/report/{PAGE}", None)
    if status == 404:
        raise AlertsError("Superset has Alerts & Reports off (no /api/v1/report/): they need Celery, so set "
                          "REDIS_URL (serve then runs the worker and beat) and restart serve")
    if status != 200:
        raise AlertsError(f"Superset refused GET /api/v1/report/: {status} {json.dumps(answer)[:300]}")
    return {r["name"]: r for r in answer["result"]}


def object_ids(api: Api) -> dict[str, dict[str, int]]:
    """{"database": {name: id}, "dashboard": {title: id}, "chart": {name: id}}."""
    return {"database": {d["database_name"]: d["id"] for d in api.call("GET", f"/api/v1/database/{PAGE}")["result"]},
            "dashboard": {d["dashboard_title"]: d["id"] for d in api.call("GET", f"/api/v1/dashboard/{PAGE}")["result"]},
            "chart": {c["slice_name"]: c["id"] for c in api.call("GET", f"/api/v1/chart/{PAGE}")["result"]}}


def payloads(definitions: list[Definition], api: Api, env: dict[str, str], settings: config.Settings) -> dict[str, dict]:
    """Every definition's API body; AlertsError naming a dashboard, chart or database Superset lacks."""
    known = object_ids(api)
    missing, bodies = [], {}
    for item in definitions:
        ids = {"database": known["database"].get(layout.DATABASE_NAME)}
        for kind in ("dashboard", "chart"):
            if item.data.get(kind):
                ids[kind] = known[kind].get(item.data[kind])
        missing += [f"{item.path.name}: Superset has no {kind} {item.data.get(kind) or layout.DATABASE_NAME!r}"
                    for kind, found in ids.items() if found is None and (kind != "database" or item.is_alert)]
        bodies[item.name] = definition.payload(item, env, ids, settings)
    if missing:
        raise AlertsError(f"{len(missing)} problem(s): {missing[0]} (run `sparklio-bi assets import`)", missing)
    return bodies


def sync(api: Api, definitions: list[Definition], env: dict[str, str], settings: config.Settings,
         prune: bool = False, say: Callable[[str], None] = lambda line: None) -> dict[str, list[str]]:
    """Make Superset hold what the files say: {"created", "updated", "unchanged", "removed", "kept"}
    names. Everything is checked before the first change."""
    bodies = payloads(definitions, api, env, settings)
    current = reports(api)
    done: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": [], "removed": [], "kept": []}
    for name, body in bodies.items():
        if name not in current:
            api.call("POST", "/api/v1/report/", body)
            done["created"].append(name)
        elif _differs(body, api.call("GET", f"/api/v1/report/{current[name]['id']}")["result"]):
            api.call("PUT", f"/api/v1/report/{current[name]['id']}", body)
            done["updated"].append(name)
        else:
            done["unchanged"].append(name)
    for name, report in current.items():
        if name not in bodies:
            if prune:
                api.call("DELETE", f"/api/v1/report/{report['id']}")
            done["removed" if prune else "kept"].append(name)
    for outcome, names in done.items():
        for name in names:
            say(f"{outcome} {name}" + (" (not in the folder; --prune removes it)" if outcome == "kept" else ""))
    return done


def _differs(body: dict, report: dict) -> bool:
    """Whether Superset's report differs from `body` in anything `body` says."""
    held = dict(report)
    for kind in ("dashboard", "chart", "database"):
        held[kind] = (report.get(kind) or {}).get("id")
    held["validator_config_json"] = json.loads(report.get("validator_config_json") or "null")
    held["recipients"] = sorted(({"type": r["type"], "recipient_config_json": json.loads(r["recipient_config_json"])}
                                 for r in report.get("recipients", [])), key=json.dumps)
    wanted = {**body, "recipients": sorted(body["recipients"], key=json.dumps)}
    return any(held.get(key) != value for key, value in wanted.items())


def export(api: Api, folder: Path, env: dict[str, str], settings: config.Settings) -> list[Path]:
    """Write every alert and report Superset holds into `folder`, one file each (a kept file's
    name and its `${param}`s where they still render to Superset's SQL); returns the files written."""
    kept = {item.name: item for item in definition.load(folder)} if folder.is_dir() else {}
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, listed in sorted(reports(api).items()):
        report = api.call("GET", f"/api/v1/report/{listed['id']}")["result"]
        old = kept.get(name)
        data = definition.from_report(report, old, env, settings)
        named = {r["to"] for r in data["recipients"]}
        data["recipients"] += [r for r in (old.data.get("recipients", []) if old else [])
                               if r.get("optional") and r.get("to") not in named]
        path = old.path if old else folder / definition.file_name(name)
        header = "".join(line for line in _leading_comments(path)) if old else ""
        path.write_text(header + definition.dump(data))
        written.append(path)
    return written


def _leading_comments(path: Path) -> list[str]:
    """The comment lines a file opens with (what the alert means, what to do): kept by export."""
    lines = path.read_text().splitlines(keepends=True)
    return lines[:next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))]


def http_api(settings: config.Settings, base: str | None = None) -> HttpApi:
    """The admin on the running Superset (`base`, default SUPERSET_HOST:SUPERSET_PORT)."""
    from sparklio_bi.superset import setup

    username, password, _ = setup.admin_credentials(settings)
    base = (base or f"http://{settings.superset_host}:{settings.superset_port}").rstrip("/")
    try:
        return HttpApi(base, username, password)
    except rest.requests.RequestException as exc:
        raise AlertsError(f"Superset does not answer at {base} ({type(exc).__name__}): start it with "
                          "`sparklio-bi serve`, or pass --superset-url") from None


def bootstrap_sync(flask_app, settings: config.Settings, note: Callable[[str], None]) -> None:
    """bootstrap's last step: alerts/ into Superset in-process, when alerts are on (REDIS_URL);
    otherwise, or when the files are not ready (a recipient variable unset), a note says why."""
    if not settings.redis_url:
        note("alerts: off (REDIS_URL is not set: Superset runs alerts and reports on its Celery worker "
             "and beat, which serve starts only with Redis); alerts/ not synced")
        return
    env = dict(os.environ)
    try:
        items = definition.checked(definition.ALERTS_DIR, settings, env)
    except AlertsError as exc:
        note(f"alerts: not synced: {exc}; then run `sparklio-bi alerts sync`")
        return
    from sparklio_bi.superset import setup

    username, password, _ = setup.admin_credentials(settings)
    done = sync(FlaskApi(flask_app, username, password), items, env, settings)
    note("alerts: " + ", ".join(f"{len(names)} {outcome}" for outcome, names in done.items() if names))
