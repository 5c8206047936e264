"""The Prometheus exporter of the analytics KPIs (`sparklio-bi metrics serve`).

One round of queries per interval, whatever the number of scrapes: a background thread runs the
round as the read-only reader role, on the analytics views only (the rollup-backed *_stats views,
so a round stays cheap at 10 million rows), and keeps the metric families it built; a scrape only
reads them. The SQL of each KPI lives in the versioned views the charts read; the queries here
only add up their rows.

Labels come from the application's bounded vocabularies (agents, models, statuses, intents, risk
levels, asset types, tables, rollups), never ids or free text; a query yielding more than
MAX_SERIES rows folds the rest into one series labelled `other`, so a runaway vocabulary cannot
blow up Prometheus. Only what adds up is added up there (counts, sums, bytes): the latency
percentiles of `other` are computed over the folded agents' executions in SQL, and any other
gauge that does not add up (a lag) keeps its first MAX_SERIES series and has no `other`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg2
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from sparklio_bi import config
from sparklio_bi.postgres import database

log = logging.getLogger(__name__)

MAX_SERIES = 200
OTHER = "other"


@dataclass(frozen=True)
class Query:
    """One SQL statement of a round and the families its rows become."""

    name: str
    sql: str
    families: Callable[[list[tuple]], list[Metric]]


def _counter(name: str, help_text: str, labels: list[str], rows, column: int) -> CounterMetricFamily:
    family = CounterMetricFamily(name, help_text, labels=labels)
    for row in _bounded(rows, len(labels)):
        if row[column] is not None:
            family.add_metric([str(v) for v in row[:len(labels)]], float(row[column]))
    return family


def _gauge(name: str, help_text: str, labels: list[str], rows, column: int, additive: bool = True) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for row in _bounded(rows, len(labels), additive):
        if row[column] is not None:
            family.add_metric([str(v) for v in row[:len(labels)]], float(row[column]))
    return family


def _bounded(rows: list[tuple], label_count: int, additive: bool = True) -> list[tuple]:
    """The rows, with those past MAX_SERIES added up into one row labelled `other`; values that
    do not add up (`additive` false) keep the first MAX_SERIES rows and no `other`."""
    if len(rows) <= MAX_SERIES:
        return rows
    if not additive:
        return rows[:MAX_SERIES]
    kept, rest = rows[:MAX_SERIES - 1], rows[MAX_SERIES - 1:]
    sums = [sum(float(r[i] or 0) for r in rest) for i in range(label_count, len(rest[0]))]
    return [*kept, (*[OTHER] * label_count, *sums)]


def _by_first_label(rows: list[tuple], column: int) -> list[tuple]:
    """Rows added up per value of their first column."""
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[row[0]] += float(row[column] or 0)
    return [(key, value) for key, value in sorted(totals.items())]


def _workflows(rows):
    running = sum(float(r[1]) for r in rows if r[0] == "running")
    started = CounterMetricFamily("sparklio_workflow_runs_started", "Workflow runs started, any status.")
    started.add_metric([], sum(float(r[1]) for r in rows))
    now = GaugeMetricFamily("sparklio_workflows_running", "Workflow runs in status running now.")
    now.add_metric([], running)
    return [_gauge("sparklio_workflow_runs", "Workflow runs by current status.", ["status"], rows, 1), started, now]


def _router(rows):
    by_model = [(r[1], r[4], r[5]) for r in rows]
    return [
        _counter("sparklio_router_decisions", "SmartRouter decisions by intent, selected model and risk level.",
                 ["intent", "model", "risk"], rows, 3),
        _counter("sparklio_context_tokens_before", "Context tokens before minimisation, by selected model.",
                 ["model"], _by_first_label(by_model, 1), 1),
        _counter("sparklio_context_tokens_after", "Context tokens sent to the model after minimisation, by model.",
                 ["model"], _by_first_label(by_model, 2), 1),
    ]


def _single(name: str, help_text: str):
    return lambda rows: [_gauge(name, help_text, [], rows, 0)]


def _agents_sql(a: str) -> str:
    """Executions and failures per agent and model in one statement: one list of rows, so both
    fold the same agents into `other` (a failure ratio per agent stays a ratio of the same
    executions); a pair without failures has none (NULL: no failures series)."""
    return (f"select agent_name, model, coalesce(ran.executions, 0), failed.failures, failed.still_failing from "
            f"(select agent_name, model, sum(executions) from {a}.agent_stats group by 1, 2) as ran "
            "(agent_name, model, executions) "
            f"full join (select agent_name, model, sum(failures), sum(still_failing) from {a}.error_stats "
            "group by 1, 2) as failed (agent_name, model, failures, still_failing) using (agent_name, model) "
            "order by 3 desc, 1, 2")


def _latency_sql(a: str) -> str:
    """p50 and p95 per agent over the last 5 minutes, the most executions first; past MAX_SERIES
    agents, `other`'s are the percentiles of the rest's executions together (percentiles do not
    add up), read from agent_logs over agent_latency_recent's own window."""
    return f"""with ranked as (
    select agent_name, executions, latency_p50_ms, latency_p95_ms,
        row_number() over (order by executions desc, agent_name) as position,
        count(*) over () > {MAX_SERIES} as folds
    from {a}.agent_latency_recent
),

folded as (
    select agent_name from ranked where folds and position >= {MAX_SERIES}
),

other as (
    select
        '{OTHER}'::text as agent_name,
        percentile_cont(0.5) within group (order by latency_ms) as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms) as latency_p95_ms,
        {MAX_SERIES}::bigint as position
    from {a}.agent_logs
    where created_at >= now() - interval '5 minutes' and agent_name in (select agent_name from folded)
    having count(*) > 0
),

final as (
    select agent_name, latency_p50_ms, latency_p95_ms, position
    from ranked where not folds or position < {MAX_SERIES}
    union all
    select * from other
)

select agent_name, latency_p50_ms / 1000, latency_p95_ms / 1000 from final order by position"""


def queries(settings: config.Settings) -> list[Query]:
    """The statements of one round, on the analytics views of `settings`."""
    a = settings.analytics_schema
    return [
        Query("agents", _agents_sql(a),
              lambda rows: [_counter("sparklio_agent_executions", "Agent executions by agent and model.",
                                     ["agent", "model"], rows, 2),
                            _counter("sparklio_agent_failures", "Failed agent executions, recovered or not, "
                                     "by agent and model.", ["agent", "model"], rows, 3),
                            _gauge("sparklio_agent_still_failing", "Failed agent executions not recovered, "
                                   "by agent and model.", ["agent", "model"], rows, 4)]),
        Query("latency", _latency_sql(a),
              lambda rows: [_gauge("sparklio_agent_latency_p50_seconds", "Median agent latency over the "
                                   "executions started in the last 5 minutes.", ["agent"], rows, 1, additive=False),
                            _gauge("sparklio_agent_latency_p95_seconds", "95th percentile agent latency over "
                                   "the executions started in the last 5 minutes.", ["agent"], rows, 2,
                                   additive=False)]),
        Query("workflows", f"select status, sum(runs) from {a}.workflow_stats group by 1 order by 2 desc", _workflows),
        Query("router", f"select intent_type, selected_model, risk_level, sum(decisions), sum(context_before_sum), "
                        f"sum(context_after_sum) from {a}.router_stats group by 1, 2, 3 order by 4 desc", _router),
        Query("assets", f"select asset_type, review_status, assets from {a}.asset_reviews order by 3 desc",
              lambda rows: [_gauge("sparklio_assets", "Generated assets by type and review status "
                                   "(unreviewed while not reviewed).", ["type", "review_status"], rows, 2)]),
        Query("active_users", f"select count(distinct user_id) from {a}.active_users_between(now() - interval '1 hour', "
                              "now())",
              _single("sparklio_active_users_last_hour", "Users who created a project in the last hour.")),
        Query("database_size", f"select database_name, size_bytes from {a}.database_size",
              lambda rows: [_gauge("sparklio_database_size_bytes", "Size of the database on disk.",
                                   ["database"], rows, 1)]),
        Query("table_sizes", f"select table_name, total_bytes from {a}.table_sizes order by 2 desc",
              lambda rows: [_gauge("sparklio_table_size_bytes", "Size of each application table with its "
                                   "indexes and toast.", ["table"], rows, 1)]),
        Query("collector", f"select extract(epoch from now() - max(sampled_at))::float8 from {a}.system_metrics",
              _single("sparklio_collector_sample_age_seconds", "Age of the collector's newest system sample "
                      "(absent before the first).")),
        Query("rollups", f"select rollup, lag_seconds from {a}.rollup_lag order by 1",
              lambda rows: [_gauge("sparklio_rollup_lag_seconds", "Seconds since each rollup's last refresh.",
                                   ["rollup"], rows, 1, additive=False)]),
    ]


@dataclass(eq=False)  # hashable by identity: a registry keys its collectors
class KpiCollector(Collector):
    """Runs rounds (`run_round`) and hands a scrape what the last round built (`collect`)."""

    reader_url: str | Callable[[], str]  # a callable is asked each round: a new password reaches it
    settings: config.Settings
    clock: Callable[[], float] = time.time
    rounds: int = 0
    round_seconds: float = 0.0
    last_success: float | None = None
    last_round_ok: bool = False
    query_errors: dict[str, int] = field(default_factory=dict)
    query_seconds: dict[str, float] = field(default_factory=dict)  # of the last round
    _errors_logged: dict[str, str] = field(default_factory=dict)  # query -> the error text last logged
    _families: list[Metric] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run_round(self) -> list[str]:
        """One round of queries; returns the names of those that failed (counted, not raised)."""
        started = time.perf_counter()
        families: list[Metric] = []
        failed: list[str] = []
        seconds: dict[str, float] = {}
        plan = queries(self.settings)
        try:
            url = self.reader_url() if callable(self.reader_url) else self.reader_url
            with database.connect(url, autocommit=True) as conn, conn.cursor() as cur:
                for query in plan:
                    began = time.perf_counter()
                    try:
                        cur.execute(f"/* sparklio-bi metrics: {query.name} */ {query.sql}")
                        families += query.families(cur.fetchall())
                    except psycopg2.Error as exc:
                        failed.append(query.name)
                        self._log_error(query.name, str(exc).strip())
                    else:
                        self._errors_logged.pop(query.name, None)
                    seconds[query.name] = time.perf_counter() - began
        except database.DatabaseError as exc:
            failed = [query.name for query in plan]
            self._log_error("connection", str(exc).strip())
        else:
            self._errors_logged.pop("connection", None)
        with self._lock:
            self._families = families
            self.rounds += 1
            self.round_seconds = time.perf_counter() - started
            self.query_seconds = seconds
            for name in failed:
                self.query_errors[name] = self.query_errors.get(name, 0) + 1
            self.last_round_ok = not failed
            if not failed:
                self.last_success = self.clock()
        return failed

    def _log_error(self, name: str, text: str) -> None:
        """Log a failure's text once per change: a round every 15 s must not repeat it forever."""
        if self._errors_logged.get(name) != text:
            self._errors_logged[name] = text
            log.warning("sparklio-bi metrics: query %s failed: %s", name, text)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            yield from self._families
            yield from self._health()

    def describe(self) -> list[Metric]:
        return []  # families vary with the data; nothing for the registry to check up front

    def _health(self) -> Iterator[Metric]:
        rounds = CounterMetricFamily("sparklio_exporter_rounds", "Rounds of queries run since the exporter started.")
        rounds.add_metric([], self.rounds)
        duration = GaugeMetricFamily("sparklio_exporter_round_duration_seconds", "Wall time of the last round.")
        duration.add_metric([], self.round_seconds)
        errors = CounterMetricFamily("sparklio_exporter_query_errors", "Queries that failed, by query.",
                                     labels=["query"])
        for query in queries(self.settings):
            errors.add_metric([query.name], self.query_errors.get(query.name, 0))
        per_query = GaugeMetricFamily("sparklio_exporter_query_duration_seconds",
                                      "Wall time of each query in the last round.", labels=["query"])
        for name, value in self.query_seconds.items():
            per_query.add_metric([name], value)
        # from the first round on, unlike the timestamp below: a round that never succeeded is seen
        ok = GaugeMetricFamily("sparklio_exporter_last_round_success",
                               "1 when every query of the last round succeeded, else 0.")
        ok.add_metric([], 1 if self.last_round_ok else 0)
        yield from (rounds, duration, errors, per_query, ok)
        if self.last_success is not None:
            success = GaugeMetricFamily("sparklio_exporter_last_success_timestamp_seconds",
                                        "Unix time of the last round in which every query succeeded.")
            success.add_metric([], self.last_success)
            yield success


@dataclass
class Exporter:
    """A running exporter: its collector, the HTTP server and the thread running the rounds."""

    collector: KpiCollector
    port: int
    _server: object
    _stop: threading.Event
    _thread: threading.Thread

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=30)


def start(reader_url: str | Callable[[], str], settings: config.Settings, port: int, host: str = "127.0.0.1",
          interval: float = 15.0) -> Exporter:
    """Serve /metrics on host:port and run one round now, then one every `interval` seconds."""
    from prometheus_client import start_http_server

    collector = KpiCollector(reader_url, settings)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    collector.run_round()  # the first scrape already sees numbers
    server, _ = start_http_server(port, addr=host, registry=registry)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(max(0.0, interval - collector.round_seconds)):
            collector.run_round()

    thread = threading.Thread(target=loop, name="sparklio-metrics-rounds", daemon=True)
    thread.start()
    return Exporter(collector, server.server_port, server, stop, thread)


def reader_url(settings: config.Settings) -> str:
    """The reader role's URL on SPARKLIO_READER_URL's server, else the analytics database's."""
    from sparklio_bi.postgres import privileges

    target = settings.reader_target_url or database.analytics_url(settings, start=False)
    return privileges.reader_url(target, settings)
