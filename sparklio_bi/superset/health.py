"""Superset's /health says whether it can serve a page, its API answers JSON during an outage,
and an outage is logged when it starts and when it ends, not as a traceback per request
(issue 31, findings 5 and 6). `install(app)` is called by superset_config.py's FLASK_APP_MUTATOR.

- /health (and /healthcheck, /ping, its other paths) answers 503, one line naming what is down,
  while the metadata database (`select 1`, 2 s to connect, 2 s statement timeout) or a Redis the
  caches or the login counters use (PING, 1 s) does not answer; else Superset's own "OK".
  HAProxy's check, compose's healthcheck, the blackbox probe (SupersetDown) and doctor ask it.
- An error of an outage (a refused or lost connection to PostgreSQL or Redis) that reaches Flask
  answers 503 with Retry-After: JSON in Superset's error shape (`message`, `errors`) on API paths,
  whatever the client accepts, a short page elsewhere; while an outage is on, any 500 of an API
  path is that 503 too (Flask-AppBuilder's login catches the error itself and says "Fatal error").
- Logging: a record carrying such an error is dropped while the probes fail; the first one runs
  them, and when they fail one line says what is down. A thread of the process probes every
  second until all answer again, then one line says so, with how many records it dropped. A
  connection error while everything answers (one stale connection, another server) is logged
  as before. Each web process logs its own two lines.

Relies on Superset 6.1.0 (kept here until internals.py checks them):
- its health view answers HEALTH_PATHS (superset/views/health.py) without touching the database;
- FLASK_APP_MUTATOR runs before Superset registers its own error handlers
  (superset/views/error_handling.py, set_app_error_handlers): they handle Exception,
  HTTPException, CommandException and its own errors, not the classes registered here, and
  Flask picks the handler of the most specific class; its catch-all sends the HTML 500 page to
  any client accepting text/html, `*/*` included, which is why the API answered HTML;
- its error payload is SIP-40's: {"errors": [{"message", "error_type", "level", "extra"}]};
- its caches are the *CACHE_CONFIG settings (RedisCache with CACHE_REDIS_URL) and the login
  counters RATELIMIT_STORAGE_URI.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

HEALTH_PATHS = ("/health", "/healthcheck", "/ping")
CONNECT_TIMEOUT = 2  # seconds, PostgreSQL's connect_timeout and statement timeout of the probe
REDIS_TIMEOUT = 1.0
RETRY_AFTER = 5  # seconds, what a 503 tells the client
RECHECK = 1.0  # seconds a probe's answer is reused (a flood of /health probes once a second)
WATCH_EVERY = 1.0  # seconds between the probes while something is down
# SQLSTATEs of a refused or lost connection: class 08, the server shutting down, crashing or
# starting (57P01-57P03), no connection slot left. Errors without one come from libpq itself.
OUTAGE_SQLSTATES = ("57P01", "57P02", "57P03", "53300")
REDIS_CACHE_TYPES = ("RedisCache", "redis")


def outage_of(exc: BaseException | None) -> str | None:
    """'database' or 'redis' when `exc` (or what caused it) is a refused or lost connection."""
    import psycopg2
    import redis

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return "redis"
        if getattr(exc, "connection_invalidated", False):
            return "database"
        orig = getattr(exc, "orig", None)
        for error in (exc, orig):
            if isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                code = error.pgcode or ""
                if not code or code.startswith("08") or code in OUTAGE_SQLSTATES:
                    return "database"
        exc = exc.__cause__ or exc.__context__
    return None


def one_line(exc: BaseException) -> str:
    """The first line of what went wrong (psycopg2's own message, not SQLAlchemy's wrapping)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def redis_urls(config: Any) -> list[str]:
    """Every Redis Superset needs to answer a request: its caches' and its login counters'."""
    found = {value["CACHE_REDIS_URL"] for name, value in config.items()
             if name.endswith("CACHE_CONFIG") and isinstance(value, dict)
             and value.get("CACHE_TYPE") in REDIS_CACHE_TYPES and value.get("CACHE_REDIS_URL")}
    limits = config.get("RATELIMIT_STORAGE_URI") or ""
    if limits.startswith(("redis://", "rediss://")):
        found.add(limits)
    return sorted(found)


def redis_address(url: str) -> str:
    """host:port of a Redis URL (never its password)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


class Probes:
    """What Superset needs to serve a page, each asked the cheapest question; made again in a
    forked process (connections do not survive a fork)."""

    def __init__(self, metadata_url: str, redis: list[str]):
        self.metadata_url, self.redis = metadata_url, redis
        self._pid: int | None = None
        self._engine: Any = None
        self._clients: dict[str, Any] = {}

    def problems(self) -> dict[str, str]:
        """What does not answer -> why (empty: all answer)."""
        self._start()
        found = {}
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql(f"set statement_timeout = {CONNECT_TIMEOUT * 1000}; select 1")
        except Exception as exc:  # whatever it is, Superset cannot use its metadata now
            found["the metadata database"] = one_line(exc)
        for url, client in self._clients.items():
            try:
                client.ping()
            except Exception as exc:
                found[f"Redis at {redis_address(url)}"] = one_line(exc)
        return found

    def _start(self) -> None:
        if self._pid == os.getpid():
            return
        import redis
        from sqlalchemy import create_engine

        self._pid = os.getpid()
        # one idle connection; at most gunicorn's threads at once, each waiting 2 s for one
        self._engine = create_engine(self.metadata_url, pool_size=1, max_overflow=7, pool_timeout=CONNECT_TIMEOUT,
                                     pool_recycle=300, connect_args={"connect_timeout": CONNECT_TIMEOUT})
        self._clients = {url: redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT,
                                                   socket_connect_timeout=REDIS_TIMEOUT) for url in self.redis}


class Outages:
    """Whether what Superset needs is down in this process; logs each change of that in one line."""

    def __init__(self, problems: Callable[[], dict[str, str]], recheck: float = RECHECK,
                 watch_every: float = WATCH_EVERY):
        self._probe, self.recheck, self.watch_every = problems, recheck, watch_every
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self.down: dict[str, str] = {}
        self.since = 0.0
        self.dropped = 0
        self._checked_at = float("-inf")

    def current(self, fresh: bool = False) -> dict[str, str]:
        """What is down now (probed at most every `recheck` seconds unless `fresh`); a change
        is logged in one line."""
        with self._lock:
            if self._pid != os.getpid():
                self._reset()  # a fork's copy: its parent's watcher does not run here
            if not fresh and time.monotonic() - self._checked_at < self.recheck:
                return dict(self.down)
            found = self._probe()
            self._checked_at = time.monotonic()
            if found and not self.down:
                self.since, self.dropped = time.monotonic(), 0
                log.warning("outage: %s; a request it fails answers 503, and its errors are not logged until "
                            "it answers again", described(found))
                threading.Thread(target=self._watch, name="outage-watch", daemon=True).start()
            elif found and set(found) != set(self.down):
                log.warning("outage goes on: %s", described(found))
            elif not found and self.down:
                log.warning("outage over after %.1f s: %s answer%s again (%d error records not logged)",
                            time.monotonic() - self.since, " and ".join(self.down), "" if len(self.down) > 1 else "s",
                            self.dropped)
            self.down = found
            return dict(found)

    def drops(self, record: logging.LogRecord) -> bool:
        """True for a record of an outage's error while something is down (counted)."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or outage_of(exc) is None:
            return False
        if not (self.down or self.current()):
            return False  # everything answers: some other connection failed, logged as before
        with self._lock:
            self.dropped += 1
        return True

    def _watch(self) -> None:
        while True:
            time.sleep(self.watch_every)
            if not self.current(fresh=True):
                return


def described(found: dict[str, str]) -> str:
    return "; ".join(f"{what} does not answer ({why})" for what, why in found.items())


class OutageFilter(logging.Filter):
    """On a handler: drops the records an outage would repeat for every request."""

    def __init__(self, outages: Outages):
        super().__init__()
        self.outages = outages

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.outages.drops(record)


WHAT = {"database": "its metadata database", "redis": "its cache (Redis)"}


def install(app: Any) -> Outages:
    """Deep /health, 503 JSON errors and the outage log filter on Superset's Flask `app`."""
    import psycopg2
    import redis
    from flask import request
    from sqlalchemy import exc as sqlalchemy_exc

    outages = Outages(Probes(app.config["SQLALCHEMY_DATABASE_URI"], redis_urls(app.config)).problems)
    app.extensions["sparklio_outages"] = outages
    for handler in logging.getLogger().handlers:
        handler.addFilter(OutageFilter(outages))

    @app.before_request
    def deep_health() -> Any:
        if request.path in HEALTH_PATHS and (down := outages.current()):
            return app.response_class(f"unavailable: {described(down)}\n", status=503, mimetype="text/plain",
                                      headers={"Retry-After": str(RETRY_AFTER)})
        return None

    def on_outage_error(error: Exception) -> Any:
        kind = outage_of(error)
        if kind is None:  # a query cancelled, a syntax error...: Superset's own catch-all answers
            catch_all = app.error_handler_spec[None][None].get(Exception)
            if catch_all is None:
                raise error
            return catch_all(error)
        outages.current()
        log.warning("%s %s failed: %s", request.method, request.path, one_line(error), exc_info=error)
        return unavailable(app, request, WHAT[kind])

    for kind in (sqlalchemy_exc.OperationalError, sqlalchemy_exc.InterfaceError, psycopg2.OperationalError,
                 psycopg2.InterfaceError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        app.register_error_handler(kind, on_outage_error)

    @app.after_request
    def api_500_in_an_outage(response: Any) -> Any:
        if response.status_code == 500 and wants_json(request) and (down := outages.down):
            kind = "redis" if all(what.startswith("Redis") for what in down) else "database"
            return unavailable(app, request, WHAT[kind])
        return response

    return outages


def wants_json(request: Any) -> bool:
    return "/api/" in request.path or request.is_json or request.accept_mimetypes.best == "application/json"


def unavailable(app: Any, request: Any, what: str) -> Any:
    """503: Superset cannot reach `what`; JSON in Superset's error shape where JSON is wanted."""
    message = f"Superset cannot reach {what}; try again shortly"
    headers = {"Retry-After": str(RETRY_AFTER)}
    if wants_json(request) or "text/html" not in request.accept_mimetypes:
        error = {"message": message, "error_type": "GENERIC_BACKEND_ERROR", "level": "error", "extra": None}
        return app.response_class(json.dumps({"message": message, "errors": [error]}), status=503,
                                  mimetype="application/json", headers=headers)
    page = f"<!doctype html><title>Superset is unavailable</title><p>{message}.</p>\n"
    return app.response_class(page, status=503, mimetype="text/html", headers=headers)
