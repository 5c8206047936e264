"""An example FastAPI app shaped like Sparklio's API, instrumented with sparklio_instrument.

Its routes stand in for the real ones (no database, no model calls): agents take a few milliseconds and
report tokens, a workflow runs agents in turn. Run it with gunicorn (see README.md beside this file).

With SPARKLIO_SERVICE_METRICS_URL set (the sink's PostgreSQL, as sparklio_metrics_writer; needs the `sink`
extra), every request is also added up per minute into analytics.service_request_minutes."""
from __future__ import annotations

import asyncio
import os
import random
import time

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from sparklio_instrument import PrometheusMiddleware, agent_execution, llm_tokens, metrics_endpoint, workflow_run
from sparklio_instrument import sink as service_metrics

AGENTS = {"copywriter": "gpt-4o", "designer": "sdxl", "strategist": "claude-sonnet", "reviewer": "gpt-4o-mini"}

# the PostgreSQL sink is optional: on when its URL is set (one writer thread per worker process)
sink = service_metrics.start() if os.environ.get("SPARKLIO_SERVICE_METRICS_URL") else None

app = FastAPI(title="Sparklio API (example)")
app.add_middleware(PrometheusMiddleware, sink=sink)
app.add_route("/metrics", metrics_endpoint, include_in_schema=False)

admin = FastAPI(title="Sparklio admin (example)")  # a mounted sub-app: its routes are labelled /admin/...
app.mount("/admin", admin)


@app.get("/projects/{project_id}")
async def project(project_id: int):
    """One project; ids below 1 do not exist (a 404 under the route's own label)."""
    if project_id < 1:
        raise HTTPException(status_code=404, detail="no such project")
    return {"id": project_id, "name": f"Project {project_id}"}


@app.get("/items/{item_id}")
async def item(item_id: str):
    """One content item: the route the load generator hits most."""
    return {"id": item_id}


@app.post("/agents/{name}/execute")
async def execute_agent(name: str, crash: bool = False, seconds: float = 0.005):
    """Run one agent: `crash=true` raises inside the app (counted as a 500, then re-raised to the server)."""
    if name not in AGENTS:
        raise HTTPException(status_code=404, detail="no such agent")
    if crash:
        raise RuntimeError(f"agent {name} crashed")
    return await _run_agent(name, seconds)


@app.post("/workflows/{workflow_id}/run")
async def run_workflow(workflow_id: int, fail: bool = False, seconds: float = 0.0):
    """Run the agents in turn; `fail=true` ends the workflow "failed" with a 500, `seconds` holds it open."""
    with workflow_run() as run:
        steps = [await _run_agent(name, 0.002) for name in AGENTS]
        await asyncio.sleep(seconds)
        if fail:
            run.status = "failed"
            return JSONResponse({"id": workflow_id, "status": "failed"}, status_code=500)
    return {"id": workflow_id, "status": run.status, "steps": steps}


@admin.get("/brands/{brand_id}")
async def brand(brand_id: int):
    """A route of the mounted admin app."""
    return {"id": brand_id}


async def _run_agent(name: str, seconds: float) -> dict:
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    tokens_in, tokens_out = random.randint(200, 800), random.randint(50, 400)
    llm_tokens(AGENTS[name], tokens_in, tokens_out)
    agent_execution(name, AGENTS[name], "success", time.perf_counter() - started)
    return {"agent": name, "tokens_in": tokens_in, "tokens_out": tokens_out}
