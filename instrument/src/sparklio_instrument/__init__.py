"""Prometheus metrics for Sparklio's FastAPI backend (issue 32): labelled by route template, safe under
several workers. The PostgreSQL sink (`sparklio_instrument.sink`) needs the `sink` extra and is not
imported here.

The names below are imported on first use: gunicorn's master imports `sparklio_instrument.multiprocess`
for its hooks, and creating the metrics there would write the master's own files into the multiprocess
directory before `on_starting` has emptied (or created) it."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "PrometheusMiddleware": "middleware",
    "instrument": "app",
    "metrics_endpoint": "app",
    "UNMATCHED": "metrics",
    "agent_execution": "metrics",
    "llm_tokens": "metrics",
    "track_pool": "metrics",
    "workflow_finished": "metrics",
    "workflow_run": "metrics",
    "workflow_started": "metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sparklio_instrument' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sparklio_instrument.{_EXPORTS[name]}"), name)
