"""Prometheus metrics for Sparklio's FastAPI backend (issue 32): labelled by route template, safe under
several workers. The PostgreSQL sink (`sparklio_instrument.sink`) needs the `sink` extra and is not
imported here."""
from sparklio_instrument.app import instrument, metrics_endpoint
from sparklio_instrument.metrics import (
    UNMATCHED,
    agent_execution,
    llm_tokens,
    track_pool,
    workflow_finished,
    workflow_run,
    workflow_started,
)
from sparklio_instrument.middleware import PrometheusMiddleware

__all__ = [
    "UNMATCHED",
    "PrometheusMiddleware",
    "agent_execution",
    "instrument",
    "llm_tokens",
    "metrics_endpoint",
    "track_pool",
    "workflow_finished",
    "workflow_run",
    "workflow_started",
]
