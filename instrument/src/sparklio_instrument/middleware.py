"""A pure ASGI middleware (no BaseHTTPMiddleware: no extra task per request, streaming untouched) that
counts and times each HTTP request under its route template, `/projects/{id}`, never its raw path.

The template is found before the app runs, so the in-progress gauge carries it too; Starlette's own
`route.matches` decides, mounted apps and FastAPI's included routers are entered, and every path that no
route matches shares one label, UNMATCHED: a scanner walking random URLs adds no series.

With a sink (`PrometheusMiddleware(app, sink=...)`, e.g. sparklio_instrument.sink.start()), each finished
request is also recorded there: method, route template, status and seconds, one in-memory update under the
sink's lock (its writer thread does the I/O), so the request never waits for PostgreSQL. When the server
stops the app (ASGI lifespan shutdown), the sink is closed, which writes the open minute: the sink's atexit
hook alone is not enough, since uvicorn (0.29 and later, as a gunicorn worker too) ends its process by
re-raising SIGTERM under the default handler after a graceful shutdown, and atexit hooks never run then."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

import anyio.to_thread
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sparklio_instrument.metrics import (
    HTTP_DURATION,
    HTTP_IN_PROGRESS,
    HTTP_REQUESTS,
    UNMATCHED,
    read_pools_now_and_then,
)

log = logging.getLogger(__name__)

# The method label comes from the client: anything outside the standard ones shares one value.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_GONE = 499  # nginx's "client closed request": the request was cancelled before a response started


class PrometheusMiddleware:
    """`app.add_middleware(PrometheusMiddleware)`: sparklio_http_* by method, route template and status code.

    `sink`: anything with `record_request(method, route, status_code, seconds)` (a PostgresSink), called once
    per finished request with the same labels; None (the default) records nowhere else."""

    def __init__(self, app: ASGIApp, sink: RequestSink | None = None) -> None:
        self.app = app
        self.sink = sink
        self._sink_failed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and hasattr(self.sink, "close"):
                send = self._closing_the_sink_at_shutdown(send)
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        endpoint = endpoint_label(scope, self.app)
        in_progress, duration = _series(method, endpoint)
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            status = 500  # what the server answers for it (ServerErrorMiddleware sits outside this one)
            raise
        except BaseException:
            status = status or CLIENT_GONE
            raise
        finally:
            seconds = time.perf_counter() - started
            status = status or 500
            duration.observe(seconds)
            _requests(method, endpoint, status).inc()
            in_progress.dec()
            if self.sink is not None:
                self._record(method, endpoint, status, seconds)
            read_pools_now_and_then()

    def _closing_the_sink_at_shutdown(self, send: Send) -> Send:
        async def send_closing(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await anyio.to_thread.run_sync(self.sink.close)  # up to its timeout, off the event loop
            await send(message)
        return send_closing

    def _record(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """Into the sink; a sink that raises costs the request nothing (logged once, not re-raised here)."""
        try:
            self.sink.record_request(method, endpoint, status, seconds)
        except Exception:
            if not self._sink_failed:
                self._sink_failed = True
                log.exception("service metrics: the sink refused a request record (logged once)")


# Each label set's child, looked up once: `labels()` validates, locks and hashes on every call (a third of
# the middleware's time per request). As bounded as the series: routes x methods (x status codes).
_by_route: dict[tuple[str, str], tuple] = {}
_by_status: dict[tuple[str, str, int], object] = {}


def _series(method: str, endpoint: str) -> tuple:
    found = _by_route.get((method, endpoint))
    if found is None:
        found = _by_route[(method, endpoint)] = (HTTP_IN_PROGRESS.labels(method, endpoint),
                                                 HTTP_DURATION.labels(method, endpoint))
    return found


def _requests(method: str, endpoint: str, status: int):
    found = _by_status.get((method, endpoint, status))
    if found is None:
        found = _by_status[(method, endpoint, status)] = HTTP_REQUESTS.labels(method, endpoint, str(status))
    return found


class RequestSink(Protocol):
    def record_request(self, method: str, route: str, status_code: int, seconds: float) -> None: ...


def endpoint_label(scope: Scope, app: ASGIApp) -> str:
    """The route template `scope` goes to in the app that owns the middleware, or UNMATCHED."""
    routes = getattr(scope.get("app"), "routes", None) or getattr(app, "routes", ())
    return route_template(routes, dict(scope)) or UNMATCHED


def route_template(routes: Iterable[BaseRoute], scope: Scope) -> str | None:
    """The template of the route Starlette's router picks for `scope`: the first full match, else the
    first partial one (the path matches, the method does not: a 405 under the route's own label)."""
    partial = None
    for route in _matchable(routes):
        match, child_scope = route.matches(scope)
        if match == Match.FULL:
            return _template(route, {**scope, **child_scope})
        if match == Match.PARTIAL and partial is None:
            partial = _template(route, {**scope, **child_scope})
    return partial


def _template(route: BaseRoute, scope: Scope) -> str | None:
    children = getattr(route, "routes", None)
    if not children:  # a Route, or a Mount of an app without routes (StaticFiles): its own template
        return getattr(route, "path_format", None)
    inner = route_template(children, scope)  # a Mount of a routed app, or a Host
    if inner is None:
        return None
    prefix = route.path_format.removesuffix("/{path}") if hasattr(route, "path") else ""
    return prefix + inner


def _matchable(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """FastAPI >= 0.137 keeps an included router as one route that yields its routes as contexts."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield route
        else:
            for context in contexts():
                yield getattr(context, "starlette_route", None) or context
