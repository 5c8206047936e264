"""Demo traffic of Sparklio's API for the API Performance dashboard: the minutes the service-metrics sink
would have written over the seed's 90 days (analytics.service_request_minutes, one writer), drawn in
PostgreSQL in one INSERT ... SELECT (no rows through Python), deterministic for a seed.

Routes shaped like Sparklio's, each with its share of the traffic, its latency (a log-normal median and
spread; agents wait for LLMs) and its status codes; the studio's hours and weekdays (profile.DIURNAL,
WEEKDAY, GROWTH), slower when busy; a few incidents where a route fails and slows. A cell (minute, route,
method, status) gets about Poisson(rate) requests; its buckets are the log-normal's cumulative shares at
Prometheus's bounds, rounded down with one uniform offset per cell: cumulative, monotone, le_10 <= requests.
Only the demo writer's rows are replaced: a table holding rows of a real writer is left alone.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import numpy as np

from sparklio_bi.warehouse.seed.profile import DIURNAL, GROWTH, WEEKDAY

DEMO_WRITER = "sparklio-demo"
TABLE = "service_request_minutes"
REQUESTS_PER_EXECUTION = 40  # API calls per agent execution (the UI polls workflows and assets)
EXECUTIONS_PER_SCALE = 10_000
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
BUCKETS = [f"le_{bound:g}".replace(".", "_") for bound in BOUNDS]
# route, method, share of all requests, median seconds, log-normal spread
ENDPOINTS = [
    ("/projects/{id}", "GET", .20, .035, .55),
    ("/projects", "GET", .10, .060, .50),
    ("/projects", "POST", .02, .090, .45),
    ("/workflows/{id}", "GET", .20, .018, .50),
    ("/workflows/{id}/run", "POST", .06, .220, .60),
    ("/agents/{name}/execute", "POST", .08, 1.60, .75),
    ("/assets/{id}", "GET", .18, .028, .55),
    ("/assets/{id}/review", "PATCH", .03, .070, .45),
    ("/auth/login", "POST", .02, .140, .35),
    ("<unmatched>", "GET", .01, .004, .40),
]
# route, method, status code, share of the route's requests, latency factor
STATUSES = [
    ("/projects/{id}", "GET", 200, .985, 1), ("/projects/{id}", "GET", 404, .012, .3),
    ("/projects/{id}", "GET", 500, .003, 1.5),
    ("/projects", "GET", 200, .995, 1), ("/projects", "GET", 401, .005, .2),
    ("/projects", "POST", 201, .96, 1), ("/projects", "POST", 422, .04, .3),
    ("/workflows/{id}", "GET", 200, .99, 1), ("/workflows/{id}", "GET", 404, .01, .3),
    ("/workflows/{id}/run", "POST", 202, .965, 1), ("/workflows/{id}/run", "POST", 409, .025, .2),
    ("/workflows/{id}/run", "POST", 500, .01, 1.2),
    ("/agents/{name}/execute", "POST", 200, .955, 1), ("/agents/{name}/execute", "POST", 429, .025, .05),
    ("/agents/{name}/execute", "POST", 502, .012, 1.5), ("/agents/{name}/execute", "POST", 504, .008, 8),
    ("/assets/{id}", "GET", 200, .985, 1), ("/assets/{id}", "GET", 404, .015, .3),
    ("/assets/{id}/review", "PATCH", 200, .97, 1), ("/assets/{id}/review", "PATCH", 422, .03, .3),
    ("/auth/login", "POST", 200, .92, 1), ("/auth/login", "POST", 401, .08, .8),
    ("<unmatched>", "GET", 404, 1, 1),
]
# The last days a row a minute, as the sink writes them; before, a row an hour (at the hour's first
# minute): the same numbers at the charts' grain (an hour), about 15 times fewer rows to seed
DETAILED_DAYS = 3
INCIDENT_ROUTES = ("/agents/{name}/execute", "/workflows/{id}/run", "/projects/{id}")


def write(cur, schema: str, scale: float, seed: int, start: datetime, end: datetime) -> int | None:
    """The demo minutes in [start, end) (whole minutes) into `schema`.service_request_minutes; rows
    written, or None when the table is not there (not migrated) or holds a real writer's rows."""
    table = f"{schema}.{TABLE}"
    cur.execute("select to_regclass(%s)", (table,))
    if cur.fetchone()[0] is None:
        return None
    cur.execute(f"select exists (select from {table} where writer <> %s)", (DEMO_WRITER,))
    if cur.fetchone()[0]:
        return None
    cur.execute(f"truncate {table}")  # its trigger empties the quarter hours and routes too
    minutes = int((end - start) / timedelta(minutes=1))
    cur.execute("set local max_parallel_workers_per_gather = 0")  # one plan order: the same rows for a seed
    cur.execute("select setseed(%s)", (random.Random(seed).uniform(-1, 1),))
    cur.execute(_insert_sql(cur, schema, seed, start, minutes), {
        "start": start, "minutes": minutes, "rate": _rate_per_minute(scale, start, minutes),
        "detailed": max(start, end - timedelta(days=DETAILED_DAYS)),
        "diurnal": _array(DIURNAL), "weekday": _array(WEEKDAY), "growth": GROWTH, "writer": DEMO_WRITER})
    written = cur.rowcount
    cur.execute("reset max_parallel_workers_per_gather")
    cur.execute(f"analyze {table}")
    cur.execute(f"analyze {schema}.service_request_quarters")
    return written


def _array(values: np.ndarray) -> str:
    """An array as one text literal: pg_stat_statements writes an ARRAY[...] of constants with a comment in it."""
    return "{" + ",".join(map(repr, values.tolist())) + "}"


def _rate_per_minute(scale: float, start: datetime, minutes: int) -> float:
    """Requests a minute at weight 1, so the window holds REQUESTS_PER_EXECUTION per agent execution."""
    at = np.datetime64(start.replace(tzinfo=None), "m") + np.arange(minutes)
    hour = (at.astype("datetime64[h]").astype(np.int64) % 24)
    weekday = (at.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    weight = DIURNAL[hour] * WEEKDAY[weekday] * np.exp(GROWTH * np.arange(minutes) / minutes)
    return REQUESTS_PER_EXECUTION * EXECUTIONS_PER_SCALE * scale / float(weight.sum())


def _incidents(seed: int, start: datetime, minutes: int) -> list[tuple]:
    """A few stretches where one route fails and slows: (since, until, route, added 5xx share, slowdown)."""
    rng = random.Random(seed * 7919 + 32)
    out = []
    for _ in range(5):
        since = start + timedelta(minutes=rng.randrange(minutes - 120))
        out.append((since, since + timedelta(minutes=rng.randint(20, 90)), rng.choice(INCIDENT_ROUTES),
                    rng.uniform(.08, .35), rng.uniform(1.8, 3.5)))
    return out


def _values(cur, rows: list[tuple], casts: str) -> str:
    template = "(" + ", ".join(f"%s::{cast}" for cast in casts.split()) + ")"
    return ", ".join(cur.mogrify(template, row).decode() for row in rows)


def _insert_sql(cur, schema: str, seed: int, start: datetime, minutes: int) -> str:
    """The INSERT: slots (a minute each for the last DETAILED_DAYS and the window's first part-hour, an hour
    each before), their rate; cells (slot, route, method, status), their requests and buckets. No comment in
    the text: pg_stat_statements would keep it, and slow_queries hides such a text (5.3)."""
    # Phi(x) ~ 1 / (1 + exp(-(1.5976 x + 0.070566 x^3))) (within 1.4e-4), x clamped so that exp stays finite
    xs = [f"least(greatest((ln({bound}) - ln(d.median_s)) / d.spread, -8), 8)" for bound in BOUNDS]
    shares = ", ".join(f"1 / (1 + exp(-(1.5976 * {x} + 0.070566 * ({x}) ^ 3))) as p{i}" for i, x in enumerate(xs))
    buckets = ", ".join(f"floor(d.n * s.p{i} + d.u)::bigint" for i in range(len(BOUNDS)))
    return f"""
insert into {schema}.service_request_minutes
    (minute_start, route, http_method, status_code, writer, requests, seconds_sum, {", ".join(BUCKETS)})
with slots as (
    select %(start)s::timestamptz + make_interval(mins => i) as minute_start, 1 as span
    from generate_series(0, %(minutes)s - 1) as i
    where %(start)s::timestamptz + make_interval(mins => i) < date_trunc('hour', %(start)s::timestamptz + interval '59 minutes')
        or %(start)s::timestamptz + make_interval(mins => i) >= %(detailed)s::timestamptz
    union all
    select h, 60
    from generate_series(
        date_trunc('hour', %(start)s::timestamptz + interval '59 minutes'), %(detailed)s::timestamptz - interval '1 hour',
        interval '1 hour'
    ) as h
),
minutes as materialized (
    select
        m.minute_start,
        d.busy,
        %(rate)s * m.span * d.busy
            * (%(weekday)s::float8 [])[(extract(isodow from m.minute_start at time zone 'UTC'))::int]
            * exp(%(growth)s * extract(epoch from m.minute_start - %(start)s::timestamptz) / 60 / %(minutes)s)
            * exp(0.15 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) as rate
    from (select * from slots order by minute_start) as m
    cross join lateral (
        select (%(diurnal)s::float8 [])[(extract(hour from m.minute_start at time zone 'UTC'))::int + 1] as busy
    ) as d
),
endpoints (route, http_method, share, median_s, spread) as (values {_values(cur, ENDPOINTS, "text text float8 float8 float8")}),
statuses (route, http_method, status_code, share, slowdown) as (
    values {_values(cur, STATUSES, "text text smallint float8 float8")}
),
incidents (since, until, route, failing, slowdown) as (
    values {_values(cur, _incidents(seed, start, minutes), "timestamptz timestamptz text float8 float8")}
),
cells as materialized (
    select
        mi.minute_start, e.route, e.http_method, s.status_code, e.spread,
        mi.rate * e.share * (s.share + case when s.status_code >= 500 then coalesce(i.failing, 0) else 0 end) as lambda,
        e.median_s * s.slowdown * (0.75 + 0.5 * mi.busy) * coalesce(i.slowdown, 1) as median_s,
        sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) as z,
        random() as u
    from minutes as mi
    cross join endpoints as e
    inner join statuses as s on s.route = e.route and s.http_method = e.http_method
    left join incidents as i on mi.minute_start >= i.since and mi.minute_start < i.until and i.route = e.route
),
drawn as (
    select *, greatest(0, floor(lambda + sqrt(lambda) * z + 0.5))::bigint as n
    from cells
)
select
    d.minute_start, d.route, d.http_method, d.status_code, %(writer)s, d.n,
    d.n * d.median_s * exp(d.spread ^ 2 / 2) * (0.9 + 0.2 * d.u), {buckets}
from drawn as d
cross join lateral (select {shares}) as s
where d.n > 0
order by d.minute_start, d.route, d.http_method, d.status_code
"""
