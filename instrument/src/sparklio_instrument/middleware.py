"""A pure ASGI middleware (no BaseHTTPMiddleware: no extra task per request, streaming untouched) that
counts and times each HTTP request under its route template, `/projects/{id}`, never its raw path.

The template is found before the app runs, so the in-progress gauge carries it too; Starlette's own
`route.matches` decides, mounted apps and FastAPI's included routers are entered, and every path that no
route matches shares one label, UNMATCHED: a scanner walking random URLs adds no series."""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sparklio_instrument.metrics import (
    HTTP_DURATION,
    HTTP_IN_PROGRESS,
    HTTP_REQUESTS,
    UNMATCHED,
    read_pools_now_and_then,
)

# The method label comes from the client: anything outside the standard ones shares one value.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_GONE = 499  # nginx's "client closed request": the request was cancelled before a response started


class PrometheusMiddleware:
    """`app.add_middleware(PrometheusMiddleware)`: sparklio_http_* by method, route template and status code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        endpoint = endpoint_label(scope, self.app)
        in_progress = HTTP_IN_PROGRESS.labels(method, endpoint)
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
            HTTP_DURATION.labels(method, endpoint).observe(time.perf_counter() - started)
            HTTP_REQUESTS.labels(method, endpoint, str(status or 500)).inc()
            in_progress.dec()
            read_pools_now_and_then()


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
