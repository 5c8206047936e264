"""The PostgreSQL sink: the service's requests and the guide's section 5 metrics, added up per minute in the
process and written by a background thread, for a host without Prometheus. Needs the `sink` extra
(psycopg2, imported when a sink is made).

    sink = PostgresSink("postgresql://sparklio_metrics_writer:...@db/sparklio")   # or from_environment()
    sink.record_request("GET", "/projects/{id}", 200, 0.012)                     # from the middleware
    sink.increment_counter("workflows_started", {"brand": "3"})

Recording never waits for the database. Each call is a dict update under a lock: the row of (the
clock's minute, route template, method, status code) for a request, of (minute, kind, name, labels)
for a metric, holding a count, a sum and Prometheus's default histogram buckets. Nothing is logged or
sent on the caller's thread.

A minute is written once, when it is complete. Every `interval` seconds (5) the writer thread closes the
minutes before the clock's current one, under the lock, so no record lands in a closed minute (a clock
stepping back records into the oldest open one), and sends every closed row in one transaction, one
INSERT per table, with ON CONFLICT DO NOTHING. Each row carries the writer id (host, pid and a uuid
drawn at start) and the tables' key is (minute, labels..., writer): a batch retried after a lost
acknowledgement changes nothing, and another process writes rows of its own that the views add up.
`close()`, called at exit too, writes the open minute as well: that writer id never writes again.
(A uvicorn process never runs atexit hooks after SIGTERM: PrometheusMiddleware(app, sink=...) closes its
sink at the ASGI lifespan shutdown.) The
conflict names no columns because a conflict target needs SELECT, which the writers' role lacks.

With the database slow or down, the rows stay buffered and the writer tries again every interval. Every
call has a deadline (the connection is libpq's non-blocking one: `connect_timeout` to connect,
`statement_timeout` + 1 s for a statement, whose server side stops at `statement_timeout`), so a
blackholed socket costs the thread one deadline. The rows held (open, closed and being written) never
exceed `max_rows`: a new row beyond it drops the oldest closed one (`dropped_rows`, logged once per
outage by the writer thread); with none closed to drop, the record is refused (`refused_records`).

Retention: every `prune_every` seconds (and again while there was more to delete) the writer calls
prune_service_metrics(retention_days), which deletes at most 10,000 rows per table older than the
retention and records it; the views show the minutes within the recorded retention.
"""
from __future__ import annotations

import atexit
import bisect
import collections
import contextlib
import json
import logging
import os
import selectors
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

log = logging.getLogger(__name__)

# Prometheus's default histogram buckets (sparklio_http_request_duration_seconds'), +Inf aside: the
# columns le_0_005 ... le_10 of both tables (a test checks the three agree)
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
BUCKET_COLUMNS = tuple("le_" + f"{bound:g}".replace(".", "_") for bound in BOUNDS)
REQUEST_COLUMNS = ("minute_start", "route", "http_method", "status_code", "writer", "requests", "seconds_sum",
                   *BUCKET_COLUMNS)
METRIC_COLUMNS = ("minute_start", "kind", "name", "labels", "writer", "samples", "value_sum", "value_min",
                  "value_max", "value_last", *BUCKET_COLUMNS)
REQUESTS, METRICS = "service_request_minutes", "service_metric_minutes"
PRUNED_PER_CALL = 10_000  # prune_service_metrics' limit per table: more left to delete when it is reached


class PostgresSink:
    """Per-minute aggregates of requests and metrics, written to PostgreSQL by a daemon thread."""

    def __init__(self, dsn: str, *, interval: float = 5.0, max_rows: int = 50_000, batch_rows: int = 5_000,
                 retention_days: int = 90, prune_every: float = 600.0, connect_timeout: float = 3.0,
                 statement_timeout: float = 5.0, schema: str = "analytics",
                 clock: Callable[[], float] = time.time) -> None:
        self._driver = _psycopg2()
        self._dsn = dsn.replace("postgresql+psycopg2://", "postgresql://", 1)
        self._interval, self._max_rows, self._batch_rows = interval, max_rows, batch_rows
        self._retention_days, self._prune_every = retention_days, prune_every
        self._connect_timeout, self._statement_timeout = connect_timeout, statement_timeout
        self._schema, self._clock = schema, clock
        self.dropped_rows = 0  # closed minute-rows dropped to stay within max_rows, never written
        self.refused_records = 0  # records refused: max_rows held, none of them closed
        self.written_rows = 0
        self.cycles = 0  # writer cycles done (each closes the complete minutes and tries to write them)
        self._reset()
        _sinks.add(self)

    def _reset(self) -> None:
        """Fresh state and a writer thread of this process (also in a forked child: the parent writes its own rows)."""
        self.writer_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._open: dict[int, dict[tuple, list]] = {}  # minute -> row key -> values
        self._floor = 0  # the oldest minute still open: a record never goes below it
        self._complete: collections.deque[tuple] = collections.deque()  # (minute, key, values), oldest first
        self._in_flight: list[tuple] = []
        self._rows = 0  # open + closed + in flight
        self._stopping = self._closing = False
        self._cycles_started = self._drained_cycle = 0
        self._failing = self._drop_logged = False
        self._dropped_logged = 0
        self._next_prune = 0.0
        if getattr(self, "_conn", None) is not None:
            _inherited.append(self._conn)  # a parent's connection: never closed (or freed) here, it is the parent's
        self._conn = None
        self._thread = threading.Thread(target=self._run, name="sparklio-sink-writer", daemon=True)
        self._thread.start()

    # --- recording: the caller's thread, no I/O -----------------------------------------------

    def record_request(self, method: str, route: str, status_code: int, seconds: float) -> None:
        """One request answered: its method, route template (never the raw path), status and duration."""
        bucket = bisect.bisect_left(BOUNDS, seconds)
        with self._lock:
            values = self._values(("r", route, method, status_code), None)
            if values is not None:
                values[0] += 1
                values[1] += seconds
                values[2 + bucket] += 1

    def record_metric(self, name: str, value: float, labels: Mapping[str, object] | None = None) -> None:
        """One value of a metric: the minute keeps its count, sum, min, max and last value."""
        self._observe("metric", name, value, labels)

    def increment_counter(self, name: str, labels: Mapping[str, object] | None = None, by: float = 1) -> None:
        """Add `by` to a counter: the minute's value_sum is its increase."""
        self._observe("counter", name, by, labels)

    def set_gauge(self, name: str, value: float, labels: Mapping[str, object] | None = None) -> None:
        """Set a gauge: the minute keeps the value it was left at (value_last), and its min and max."""
        self._observe("gauge", name, value, labels)

    def record_histogram(self, name: str, value: float, labels: Mapping[str, object] | None = None) -> None:
        """One observation of a histogram: counted in Prometheus's default buckets, with count and sum."""
        self._observe("histogram", name, value, labels, bisect.bisect_left(BOUNDS, value))

    def _observe(self, kind: str, name: str, value: float, labels, bucket: int | None = None) -> None:
        key = ("m", kind, name, tuple(sorted((str(k), str(v)) for k, v in labels.items())) if labels else ())
        with self._lock:
            values = self._values(key, value)
            if values is not None:
                values[0] += 1
                values[1] += value
                values[2] = min(values[2], value)
                values[3] = max(values[3], value)
                values[4] = value
                if bucket is not None:
                    values[5 + bucket] += 1

    def _values(self, key: tuple, first: float | None) -> list | None:
        """The open row of `key` in the clock's minute, made if new and room is left (under the lock)."""
        minute = max(int(self._clock() // 60) * 60, self._floor)
        rows = self._open.get(minute)
        if rows is None:
            rows = self._open[minute] = {}
        values = rows.get(key)
        if values is None and not self._closing:
            if self._rows >= self._max_rows:
                if not self._complete:
                    self.refused_records += 1
                    return None
                self._complete.popleft()
                self._rows -= 1
                self.dropped_rows += 1
            values = rows[key] = _new_values(key, first)
            self._rows += 1
        return values

    # --- reading the sink's state -------------------------------------------------------------

    @property
    def buffered_rows(self) -> int:
        """Minute-rows held in memory now: open, closed and being written (never above max_rows)."""
        return self._rows

    def flush(self, timeout: float = 10.0) -> bool:
        """Write every complete minute now; True once written, False if not done within `timeout`."""
        with self._lock:
            wanted = self._cycles_started + 1
            self._wake.set()
            return self._done.wait_for(lambda: self._drained_cycle >= wanted, timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Write every minute, the open one included, and stop the writer; True if all were written."""
        with self._lock:
            if not self._stopping:
                self._stopping = True
                self._close_by = time.monotonic() + timeout
        self._wake.set()
        self._thread.join(timeout)
        return not self._rows

    # --- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stopping:
                self._write_to_the_end()
                return
            try:
                self._cycle(final=False)
            except Exception:  # a bug here must not end the thread: the rows stay, the next cycle tries again
                log.exception("service metrics: the writer's cycle failed")

    def _write_to_the_end(self) -> None:
        while not self._cycle(final=True) and time.monotonic() < self._close_by:
            self._wake.wait(min(self._interval, max(0.0, self._close_by - time.monotonic())))
        self._disconnect()

    def _cycle(self, final: bool) -> bool:
        """Close the complete minutes (all of them when final), write what is closed; True when all was."""
        with self._lock:
            self._cycles_started += 1
            number = self._cycles_started
            self._close_minutes(final)
        drained = self._write_closed()
        if drained and self._conn is not None and time.monotonic() >= self._next_prune:
            self._prune()
        with self._lock:
            if drained:
                self._drained_cycle = number
            self.cycles += 1
            self._done.notify_all()
        self._log_drops()
        return drained

    def _close_minutes(self, final: bool) -> None:
        now = int(self._clock() // 60) * 60
        self._closing = self._closing or final
        for minute in sorted(m for m in self._open if final or m < now):
            self._complete.extend((minute, key, values) for key, values in self._open.pop(minute).items())
        self._floor = max(self._floor, now)

    def _write_closed(self) -> bool:
        """Send the closed rows, `batch_rows` per transaction, until none is left or a write fails."""
        while True:
            with self._lock:
                if not self._complete:
                    return True
            if not self._connected():
                return False
            with self._lock:
                count = min(self._batch_rows, len(self._complete))
                self._in_flight = [self._complete.popleft() for _ in range(count)]
            try:
                self._execute(self._insert_sql(self._in_flight))
            except Exception as exc:  # any failure of the database or the network: keep the rows, try later
                self._failed(exc)
                with self._lock:
                    self._complete.extendleft(reversed(self._in_flight))
                    self._in_flight = []
                return False
            with self._lock:
                self._rows -= len(self._in_flight)
                self.written_rows += len(self._in_flight)
                self._in_flight = []
            if self._failing:
                log.info("service metrics: written to PostgreSQL again (%d rows dropped meanwhile in all)",
                         self.dropped_rows)
            self._failing = self._drop_logged = False

    def _insert_sql(self, rows: list[tuple]) -> bytes:
        cursor = self._conn.cursor()
        requests = [self._request_row(minute, key, values) for minute, key, values in rows if key[0] == "r"]
        metrics = [self._metric_row(minute, key, values) for minute, key, values in rows if key[0] == "m"]
        statements = []
        for table, columns, found in ((REQUESTS, REQUEST_COLUMNS, requests), (METRICS, METRIC_COLUMNS, metrics)):
            if found:
                placeholders = ("(" + ", ".join(["%s"] * len(columns)) + ")").encode()
                values = b", ".join(cursor.mogrify(placeholders, row) for row in found)
                statements.append(f"insert into {self._schema}.{table} ({', '.join(columns)}) values ".encode()
                                  + values + b" on conflict do nothing")
        return b"; ".join(statements)  # one simple query: one transaction

    def _request_row(self, minute: int, key: tuple, values: list) -> tuple:
        _, route, method, status_code = key
        return (_utc(minute), route, method, status_code, self.writer_id, values[0], values[1],
                *_cumulative(values[2:-1]))

    def _metric_row(self, minute: int, key: tuple, values: list) -> tuple:
        _, kind, name, labels = key
        buckets = _cumulative(values[5:-1]) if kind == "histogram" else [None] * len(BOUNDS)
        return (_utc(minute), kind, name, json.dumps(dict(labels), sort_keys=True), self.writer_id,
                *values[:5], *buckets)

    def _prune(self) -> None:
        try:
            cursor = self._execute(self._conn.cursor().mogrify(
                f"select {self._schema}.prune_service_metrics(%s)", (self._retention_days,)))
            more = cursor.fetchone()[0] >= PRUNED_PER_CALL
        except Exception as exc:
            log.warning("service metrics: pruning past %d days failed: %s", self._retention_days, exc)
            more = False
        self._next_prune = time.monotonic() + (0 if more else self._prune_every)

    # --- the connection: libpq's non-blocking mode, every wait bounded --------------------------

    def _connected(self) -> bool:
        if self._conn is not None and not self._conn.closed:
            return True
        try:
            self._conn = self._driver.connect(
                self._dsn, async_=True, application_name="sparklio-sink",
                options=f"-c statement_timeout={int(self._statement_timeout * 1000)}")
            self._wait(self._connect_timeout)
            return True
        except Exception as exc:
            self._failed(exc)
            return False

    def _execute(self, query: bytes):
        cursor = self._conn.cursor()
        cursor.execute(query)
        self._wait(self._statement_timeout + 1)
        return cursor

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        extensions = self._driver.extensions
        with selectors.DefaultSelector() as selector:
            while (state := self._conn.poll()) != extensions.POLL_OK:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no answer from PostgreSQL within {seconds:g} s")
                event = selectors.EVENT_READ if state == extensions.POLL_READ else selectors.EVENT_WRITE
                selector.register(self._conn.fileno(), event)
                selector.select(remaining)
                selector.unregister(self._conn.fileno())

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            log.warning("service metrics: writing to PostgreSQL failed (%s); keeping up to %d rows, retrying every %g s",
                        str(exc).strip() or type(exc).__name__, self._max_rows, self._interval)
        self._failing = True
        self._disconnect()

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing left to do with it
                self._conn.close()
            self._conn = None

    def _log_drops(self) -> None:
        if self.dropped_rows > self._dropped_logged and not self._drop_logged:
            log.warning("service metrics: buffer full (%d rows): dropping the oldest minutes until PostgreSQL takes "
                        "them again (%d dropped so far)", self._max_rows, self.dropped_rows)
            self._drop_logged = True
        self._dropped_logged = self.dropped_rows


def _new_values(key: tuple, first: float | None) -> list:
    """A request row: [count, seconds, one count per bucket]; a metric row: [samples, sum, min, max, last],
    then for a histogram one count per bucket."""
    if key[0] == "r":
        return [0, 0.0] + [0] * (len(BOUNDS) + 1)
    return [0, 0.0, first, first, first] + ([0] * (len(BOUNDS) + 1) if key[1] == "histogram" else [])


def _cumulative(counts: list) -> list[int]:
    """Counts per bucket -> counts at or below each bound (Prometheus's `le`), +Inf left out."""
    out, total = [], 0
    for count in counts:
        total += count
        out.append(total)
    return out


def _utc(minute: int) -> datetime:
    return datetime.fromtimestamp(minute, timezone.utc)


def _psycopg2():
    try:
        import psycopg2
        import psycopg2.extensions
    except ImportError:
        raise ImportError("the PostgreSQL sink needs psycopg2: pip install 'sparklio-instrument[sink]'") from None
    return psycopg2


# --- one sink per process, from the environment: the guide's module-level functions ------------

_sinks: weakref.WeakSet[PostgresSink] = weakref.WeakSet()
_inherited: list = []
_default: PostgresSink | None = None


def from_environment(environ: Mapping[str, str] = os.environ) -> PostgresSink:
    """A sink from SPARKLIO_SERVICE_METRICS_URL (the writers' role), _INTERVAL (5 s), _RETENTION_DAYS (90),
    _MAX_ROWS (50,000)."""
    url = environ.get("SPARKLIO_SERVICE_METRICS_URL")
    if not url:
        raise ValueError("SPARKLIO_SERVICE_METRICS_URL is not set: the sink's PostgreSQL URL, as sparklio_metrics_writer")
    return PostgresSink(url, interval=float(environ.get("SPARKLIO_SERVICE_METRICS_INTERVAL", "5")),
                        retention_days=int(environ.get("SPARKLIO_SERVICE_METRICS_RETENTION_DAYS", "90")),
                        max_rows=int(environ.get("SPARKLIO_SERVICE_METRICS_MAX_ROWS", "50000")))


def start(sink: PostgresSink | None = None) -> PostgresSink:
    """Make `sink` (default: from_environment()) the one the module-level functions record into."""
    global _default
    _default = sink or from_environment()
    return _default


def record_request(method: str, route: str, status_code: int, seconds: float) -> None:
    if _default is not None:
        _default.record_request(method, route, status_code, seconds)


def record_metric(name: str, value: float, labels: Mapping[str, object] | None = None) -> None:
    """PostgresSink.record_metric on the started sink (nothing before start())."""
    if _default is not None:
        _default.record_metric(name, value, labels)


def increment_counter(name: str, labels: Mapping[str, object] | None = None, by: float = 1) -> None:
    """PostgresSink.increment_counter on the started sink (nothing before start())."""
    if _default is not None:
        _default.increment_counter(name, labels, by)


def set_gauge(name: str, value: float, labels: Mapping[str, object] | None = None) -> None:
    """PostgresSink.set_gauge on the started sink (nothing before start())."""
    if _default is not None:
        _default.set_gauge(name, value, labels)


def record_histogram(name: str, value: float, labels: Mapping[str, object] | None = None) -> None:
    """PostgresSink.record_histogram on the started sink (nothing before start())."""
    if _default is not None:
        _default.record_histogram(name, value, labels)


@atexit.register
def _close_all() -> None:
    for sink in list(_sinks):
        sink.close(timeout=5.0)


def _after_fork_in_child() -> None:
    for sink in list(_sinks):
        if not sink._stopping:
            sink._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
