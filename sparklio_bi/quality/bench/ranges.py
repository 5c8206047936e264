"""Every chart a time range applies to, for many ranges, while rows arrive (a writer beside it)."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import requests

from sparklio_bi.config import PROJECT_ROOT
from sparklio_bi.postgres import database
from sparklio_bi.quality import reference
from sparklio_bi.quality.bench.charts import sql_timer
from sparklio_bi.quality.bench.harness import Progress
from sparklio_bi.quality.bench.stats import timed
from sparklio_bi.superset.assets import RANGED_VIEWS, load_yaml
from sparklio_bi.superset.rest import csrf_headers, listing, post

# The ranges a person can pick on the charts (Superset's names, relative to now) and a few
# custom ones whose ends fall at any second, drawn with a fixed seed (tests/test_time_ranges.py
# proves the numbers for many more)
NAMED_RANGES = ("Last day", "Last week", "Last month", "Last quarter", "Last year", "previous calendar week",
                "previous calendar month", 'DATEADD(DATETIME("now"), -1, hour) : now',
                'DATEADD(DATETIME("now"), -6, hour) : now', "No filter")
CUSTOM_RANGES = 4


def insert_new_rows(cur, rows: int) -> None:
    """`rows` new agent_logs and as many router_logs, copies of the latest, created now."""
    for table, columns in (("agent_logs", "workflow_id, agent_name, model, status, latency_ms, error_type, "
                                          "error_message, error_at, recovered_at"),
                           ("router_logs", "workflow_id, intent_type, selected_model, risk_level, "
                                           "context_size_before, context_size_after")):
        cur.execute(f"insert into public.{table} ({columns}, created_at) "
                    f"select {columns}, now() from public.{table} order by id desc limit %s", (rows,))


class Writer(threading.Thread):
    """Rows arriving while the bench measures: every second, agent_logs and router_logs rows (copies
    of the latest, created now) at `per_hour` rows an hour each, as Sparklio's application writes."""

    def __init__(self, owner_url: str, per_hour: float):
        super().__init__(daemon=True)
        self.owner_url, self.per_hour, self.written = owner_url, per_hour, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        due = 0.0
        with database.connect(self.owner_url, autocommit=True) as conn, conn.cursor() as cur:
            while not self.stopped.wait(1.0):
                due += self.per_hour / 3600
                batch, due = int(due), due - int(due)
                if not batch:
                    continue
                insert_new_rows(cur, batch)
                self.written += batch


def ranged_charts(rollups_only: bool = True) -> list[dict]:
    """The charts of assets/ on the rollup datasets (or, not `rollups_only`, on any dataset with
    a time column: every chart a time range applies to), each with its dataset's "view" and
    "time_column"."""
    datasets = {}
    for path in sorted((PROJECT_ROOT / "assets" / "datasets").glob("*/*.yaml")):
        cfg = load_yaml(path.read_text())
        if cfg["table_name"] in RANGED_VIEWS if rollups_only else cfg.get("main_dttm_col"):
            datasets[cfg["uuid"]] = cfg
    out = []
    for path in sorted((PROJECT_ROOT / "assets" / "charts").glob("*.yaml")):
        chart = load_yaml(path.read_text())
        dataset = datasets.get(chart["dataset_uuid"])
        if dataset:
            out.append({**chart, "view": dataset["table_name"], "time_column": dataset["main_dttm_col"]})
    return out


def queries_for_ranges(chart: dict, time_ranges: list[str]) -> list[dict]:
    """The chart's saved query once per time range: its time range filter set to each (one on
    its dataset's time column added when the chart has none)."""
    (query,) = json.loads(chart["query_context"])["queries"]
    queries = []
    for time_range in time_ranges:
        q = json.loads(json.dumps(query))
        ranged = [f for f in q["filters"] if f["op"] == "TEMPORAL_RANGE"]
        if not ranged:  # a chart over all time by default
            ranged = [{"col": chart["time_column"], "op": "TEMPORAL_RANGE"}]
            q["filters"].append(ranged[0])
        ranged[0]["val"] = time_range
        queries.append(q)
    return queries


def recent_hourly_rate(owner_url: str) -> float:
    """agent_logs rows an hour over the data's last 24 hours."""
    with database.connect(owner_url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) / 24.0 from public.agent_logs where created_at >= "
                    "(select max(created_at) from public.agent_logs) - interval '24 hours'")
        return float(cur.fetchone()[0])


def measure_ranges(base: str, session: requests.Session, owner_url: str, reader_url: str, runs: int,
                   progress: Progress, seed: int = 15) -> dict:
    """Each chart a time range applies to, for each of NAMED_RANGES, CUSTOM_RANGES random custom ranges and
    its default: the SQL Superset writes for that range (chart data API, result_type "query"),
    timed as the reader role while a Writer adds rows at the data's recent hourly rate and the
    served refresher runs; beside each figure, how many agent_logs rows were after the agent
    rollup's watermark (the live part) when it was measured."""
    import random

    rng = random.Random(seed)
    per_hour = recent_hourly_rate(owner_url)
    writer = Writer(owner_url, per_hour)
    writer.start()
    ids = {c["slice_name"]: c["id"] for c in listing(base, session, "chart")}
    dataset_ids = {d["table_name"]: d["id"] for d in listing(base, session, "dataset")}
    headers = csrf_headers(base, session)
    keys = {title: key for key, title in reference.chart_titles().items()}
    out = []
    try:
        with database.connect(owner_url) as conn, conn.cursor() as cur:
            cur.execute("select now()")
            now = cur.fetchone()[0]
        for chart in ranged_charts(rollups_only=False):
            context = json.loads(chart["query_context"])
            default = next((f["val"] for f in context["queries"][0]["filters"] if f["op"] == "TEMPORAL_RANGE"),
                           "No filter")
            custom = []
            for _ in range(CUSTOM_RANGES):
                start = now - timedelta(seconds=rng.randint(3600, 60 * 86400))
                end = start + timedelta(seconds=rng.randint(600, 20 * 86400))
                custom.append(f"{start.replace(tzinfo=None).isoformat(timespec='seconds')} : "
                              f"{min(end, now).replace(tzinfo=None).isoformat(timespec='seconds')}")
            ranges = [default, *NAMED_RANGES, *custom]
            context.update(queries=queries_for_ranges(chart, ranges), result_type="query", force=True,
                           datasource={"id": dataset_ids[chart["view"]], "type": "table"},
                           form_data={**context["form_data"], "slice_id": ids[chart["slice_name"]]})
            answer = post(session, f"{base}/api/v1/chart/data", context, headers).json()
            figures = {}
            for i, (time_range, item) in enumerate(zip(ranges, answer["result"])):
                with sql_timer(reader_url, item["query"]) as run:
                    figure, _ = timed(run, runs)
                with database.connect(owner_url) as conn, conn.cursor() as cur:
                    cur.execute("select count(*) from public.agent_logs where created_at >= "
                                "(select watermark from analytics.rollup_state where rollup = 'agent')")
                    figure["live_rows"] = cur.fetchone()[0]
                figures[f"default: {time_range}" if i == 0 else time_range] = figure
            worst = max(figures.values(), key=lambda f: f["p95"])
            key = keys.get(chart["slice_name"], "?")
            progress(f"ranges {key:<4} {chart['slice_name'][:34]:<34} worst p95 {worst['p95']:>6.1f} ms "
                     f"over {len(figures)} ranges")
            out.append({"key": key, "title": chart["slice_name"], "dataset": chart["view"], "ranges": figures})
    finally:
        writer.stopped.set()
        writer.join(10)
    hours = writer.written / per_hour if per_hour else 0
    return {"charts": out, "write_rate_per_hour": round(per_hour), "rows_written": writer.written,
            "written_over_hours": round(hours, 3),
            "how": "each range's SQL from the chart data API (result_type query), timed as the reader after one "
                   "warm-up, while agent_logs and router_logs rows arrived every second at the data's last-24-hour "
                   "rate and `serve`'s refresher ran every 30 s; live_rows: agent_logs rows after the agent "
                   "rollup's watermark right after the figure was taken"}


def range_targets(measured: dict) -> dict:
    """Every ranged chart's generated SQL p95 <= 50 ms for every range, while rows arrive."""
    offenders = sorted({f"{c['key']} {name}" for c in measured["charts"] for name, f in c["ranges"].items()
                        if f["p95"] > 50.0})
    worst = max((f["p95"] for c in measured["charts"] for f in c["ranges"].values()), default=0.0)
    return {"range_query_p95": {"target": "every chart's generated SQL, p95 <= 50 ms for every range, "
                                          "while rows arrive", "figure": f"worst {worst:.1f} ms",
                                "met": not offenders, "offenders": offenders}}
