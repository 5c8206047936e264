"""The two lines in the app: the middleware and the /metrics route."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from sparklio_instrument.metrics import read_pools
from sparklio_instrument.middleware import PrometheusMiddleware
from sparklio_instrument.multiprocess import registry


async def metrics_endpoint(request: Request) -> Response:
    """The Prometheus text exposition: `app.add_route("/metrics", metrics_endpoint)`."""
    read_pools()
    return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)


def instrument(app, path: str = "/metrics", sink=None) -> None:
    """Both lines at once: PrometheusMiddleware on `app` (Starlette or FastAPI) and `path` serving the metrics;
    `sink` (a PostgresSink, optional) gets every request too."""
    app.add_middleware(PrometheusMiddleware, sink=sink)
    app.add_route(path, metrics_endpoint, include_in_schema=False)
