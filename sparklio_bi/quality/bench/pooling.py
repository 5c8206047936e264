"""The forced chart requests with Superset's analytics connection through PgBouncer and
straight to PostgreSQL, in one run, on one server, while rows arrive."""
from __future__ import annotations

import requests
from sqlalchemy.engine import make_url

from sparklio_bi.quality import reference
from sparklio_bi.quality.bench.harness import Progress
from sparklio_bi.quality.bench.ranges import Writer, recent_hourly_rate
from sparklio_bi.quality.bench.stats import stats, timed
from sparklio_bi.superset.rest import RestError, csrf_headers, get, listing

MODES = ("pooled", "direct", "pooled again")  # the pooler measured before and after: drift shows


def measure_pooling(base: str, session: requests.Session, owner_url: str, pooled_url: str, direct_url: str,
                    runs: int, progress: Progress) -> dict:
    """Each chart's forced data request (`?force=true`) `runs` times per mode, Superset's databases
    (the analytics one and the server-health one, both on this server) pointed at `pooled_url` then
    `direct_url` then `pooled_url` again through its REST API (PUT /api/v1/database/<id>), while a
    Writer adds rows at the recent hourly rate."""
    database_ids = [d["id"] for d in listing(base, session, "database")]
    titles = reference.chart_titles()
    ids = {c["slice_name"]: c["id"] for c in listing(base, session, "chart")}
    charts = [(chart.key, ids[titles[chart.key]]) for chart in reference.CHARTS]
    writer = Writer(owner_url, recent_hourly_rate(owner_url))
    writer.start()
    modes = {}
    try:
        for mode in MODES:
            for database_id in database_ids:
                _point_database(base, session, database_id, direct_url if mode == "direct" else pooled_url)
            figures, samples = {}, []
            for key, chart_id in charts:
                url = f"{base}/api/v1/chart/{chart_id}/data/?force=true"
                figure, _ = timed(lambda url=url: get(session, url), runs)
                figures[key] = figure
                samples.append(figure["p50"])
            modes[mode] = {"charts": figures, "sum_p50_ms": round(sum(samples), 1),
                           "worst_p95_ms": max(f["p95"] for f in figures.values()),
                           "p50_of_p50s_ms": stats(samples)["p50"]}
            progress(f"pooling {mode:<12} {len(charts)} forced requests: p50s add up to {modes[mode]['sum_p50_ms']:,.0f} ms, "
                     f"worst p95 {modes[mode]['worst_p95_ms']:.0f} ms")
    finally:
        for database_id in database_ids:
            _point_database(base, session, database_id, pooled_url)
        writer.stopped.set()
        writer.join(10)
    return {"modes": modes, "rows_written": writer.written,
            "pooled_port": make_url(pooled_url).port, "direct_port": make_url(direct_url).port,
            "how": "Superset's databases pointed at PgBouncer (transaction pooling, DISCARD ALL "
                   "after each transaction), at PostgreSQL itself, then at PgBouncer again, through the REST "
                   "API; in each mode every chart's data API with force=true, one warm-up then `runs` timed, "
                   "while agent_logs and router_logs rows arrived every second"}


def _point_database(base: str, session: requests.Session, database_id: int, uri: str) -> None:
    response = session.put(f"{base}/api/v1/database/{database_id}", json={"sqlalchemy_uri": uri},
                           headers=csrf_headers(base, session), timeout=120)
    if response.status_code != 200:
        raise RestError(f"PUT /api/v1/database/{database_id}: {response.status_code} {response.text[:300]}")


def pooling_lines(pooling: dict | None) -> list[str]:
    """The comparison, a line per mode (printed, and in the markdown)."""
    if not pooling:
        return []
    modes = pooling["modes"]
    lines = [f"forced API with Superset's connection {mode}: p50s add up to {m['sum_p50_ms']:,.0f} ms, "
             f"median chart {m['p50_of_p50s_ms']:.1f} ms, worst p95 {m['worst_p95_ms']:.0f} ms"
             for mode, m in modes.items()]
    slower = sorted(((modes["pooled"]["charts"][k]["p50"] - modes["direct"]["charts"][k]["p50"], k)
                     for k in modes["pooled"]["charts"]), reverse=True)[:3]
    return lines + ["pooled minus direct, the 3 largest per chart (p50): "
                    + ", ".join(f"{key} {delta:+.1f} ms" for delta, key in slower)]
