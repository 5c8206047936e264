"""The metric objects (the monitoring guide's names) and the helpers Sparklio's agent and workflow code calls.

Gauges carry `multiprocess_mode="livesum"`: under several workers the scrape adds up the live
processes' values, and a dead worker's values go with it (`mark_process_dead`)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

UNMATCHED = "<unmatched>"  # the one endpoint label of every path no route matched (404s, scanners)

HTTP_REQUESTS = Counter(
    "sparklio_http_requests_total", "HTTP requests answered, by route template and status code.",
    ["method", "endpoint", "status_code"])
HTTP_DURATION = Histogram(
    "sparklio_http_request_duration_seconds", "Time from a request's arrival to its last byte, by route template.",
    ["method", "endpoint"])
HTTP_IN_PROGRESS = Gauge(
    "sparklio_http_requests_in_progress", "HTTP requests being answered now, by route template.",
    ["method", "endpoint"], multiprocess_mode="livesum")

AGENT_EXECUTIONS = Counter(
    "sparklio_agent_executions_total", "Agent executions, by agent and outcome.", ["agent_name", "status"])
AGENT_DURATION = Histogram(
    "sparklio_agent_duration_seconds", "How long an agent execution took, by agent and model.",
    ["agent_name", "model"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300))
WORKFLOWS = Counter("sparklio_workflows_total", "Workflows finished, by final status.", ["status"])
ACTIVE_WORKFLOWS = Gauge("sparklio_active_workflows", "Workflows running now.", multiprocess_mode="livesum")
LLM_TOKENS = Counter("sparklio_llm_tokens_total", "LLM tokens sent (in) and received (out), by model.",
                     ["model", "direction"])
POOL_SIZE = Gauge("sparklio_db_connection_pool_size", "Connections the SQLAlchemy pool keeps (pool.size()).",
                  ["pool"], multiprocess_mode="livesum")
POOL_CHECKED_OUT = Gauge("sparklio_db_connection_pool_checked_out",
                         "Connections checked out of the SQLAlchemy pool now (pool.checkedout()).",
                         ["pool"], multiprocess_mode="livesum")


def agent_execution(agent: str, model: str, status: str, seconds: float) -> None:
    """Count one agent execution and observe its duration, e.g. agent_execution("copywriter", "gpt-4o", "success", 2.3)."""
    AGENT_EXECUTIONS.labels(agent, status).inc()
    AGENT_DURATION.labels(agent, model).observe(seconds)


def llm_tokens(model: str, tokens_in: int, tokens_out: int) -> None:
    """Add one LLM call's prompt (in) and completion (out) tokens to the model's totals."""
    LLM_TOKENS.labels(model, "in").inc(tokens_in)
    LLM_TOKENS.labels(model, "out").inc(tokens_out)


def workflow_started() -> None:
    """One more workflow running (pair it with workflow_finished, or use `with workflow_run():`)."""
    ACTIVE_WORKFLOWS.inc()


def workflow_finished(status: str) -> None:
    """One workflow fewer running, counted by its final status ("completed", "failed", ...)."""
    ACTIVE_WORKFLOWS.dec()
    WORKFLOWS.labels(status).inc()


@dataclass
class WorkflowRun:
    """The status a `workflow_run()` block ends with; the block may set it ("cancelled", "needs_review")."""

    status: str = "completed"


@contextmanager
def workflow_run() -> Iterator[WorkflowRun]:
    """Count a workflow as active for the block; it finishes "completed", "failed" on an exception, or as set."""
    run = WorkflowRun()
    workflow_started()
    try:
        yield run
    except Exception:
        run.status = "failed"
        raise
    except BaseException:  # asyncio.CancelledError, KeyboardInterrupt: the run did not fail, it was stopped
        run.status = "cancelled"
        raise
    finally:
        workflow_finished(run.status)


_pools: dict[str, Callable[[], object]] = {}
_pools_read_at = 0.0


def track_pool(engine: object, name: str = "default") -> None:
    """Report `engine`'s pool (a SQLAlchemy Engine or AsyncEngine) as the `pool="name"` series.

    SQLAlchemy is never imported: the pool is read through the engine at scrape time and, under
    several workers, at most once a second after a request, so each worker's file holds its own pool."""
    engine = getattr(engine, "sync_engine", engine)  # an AsyncEngine wraps the Engine that owns the pool
    _pools[name] = lambda: engine.pool
    read_pools()


def read_pools() -> None:
    """Set the pool gauges from every tracked engine's pool as it is now."""
    global _pools_read_at
    _pools_read_at = time.monotonic()
    for name, pool_of in _pools.items():
        pool = pool_of()
        if hasattr(pool, "size"):  # QueuePool and its kin; NullPool and StaticPool keep no count
            POOL_SIZE.labels(name).set(pool.size())
            POOL_CHECKED_OUT.labels(name).set(pool.checkedout())


def read_pools_now_and_then() -> None:
    """read_pools at most once a second: the middleware calls this after every request."""
    if _pools and time.monotonic() - _pools_read_at >= 1.0:
        read_pools()
