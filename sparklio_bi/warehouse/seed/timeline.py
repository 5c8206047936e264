"""Time in integer milliseconds, the 90-day window cut into weighted hours, and the COPY writer."""
from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np

from sparklio_bi.warehouse.seed.profile import DIURNAL, GROWTH, WEEKDAY

Progress = Callable[[str, int, int], None]  # (table, rows written so far, rows it will have)
HOUR = 3_600_000  # timestamps are integer milliseconds since the epoch
DAY = 24 * HOUR
WINDOW_DAYS = 90
TABLE_COLUMNS = {
    "users": "id, email, created_at",
    "brands": "id, name, created_at",
    "projects": "id, brand_id, user_id, name, created_at",
    "workflows": "id, project_id, status, created_at, completed_at",
    "agent_logs": "id, workflow_id, agent_name, model, status, latency_ms, error_type, error_message, "
                  "error_at, recovered_at, created_at",
    "router_logs": "id, workflow_id, intent_type, selected_model, risk_level, context_size_before, "
                   "context_size_after, created_at",
    "assets": "id, project_id, workflow_id, asset_type, review_status, review_score, created_at",
}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Timeline:
    """The window cut into UTC hours, each weighted by how busy the studio is then."""

    def __init__(self, start: int, end: int):
        edges = np.unique(np.r_[start, np.arange(start // HOUR + 1, end // HOUR + 1) * HOUR, end])
        self.start, self.end = start, end
        self.lo, self.length = edges[:-1], np.diff(edges)
        growth = np.exp(GROWTH * (self.lo - start) / (end - start))
        weekday = (self.lo // DAY + 3) % 7  # 1970-01-01 was a Thursday
        self.weight = self.length / HOUR * DIURNAL[self.lo // HOUR % 24] * WEEKDAY[weekday] * growth
        self.cum = np.r_[0, np.cumsum(self.weight)]
        day = self.lo // DAY - start // DAY
        self.days = int(day[-1]) + 1
        first = np.searchsorted(day, np.arange(self.days + 1))
        self.day_lo, self.day_hi = self.cum[first[:-1]], self.cum[first[1:]]

    def day_counts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n events spread over the days: each day gets at least the whole part of its share."""
        expected = n * (self.day_hi - self.day_lo) / self.cum[-1]
        counts = np.floor(expected).astype(np.int64)
        rest = expected - counts
        if n > counts.sum():
            counts += rng.multinomial(n - counts.sum(), rest / rest.sum())
        return counts

    def sample(self, rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
        """One sorted timestamp within each given day, following the hourly weights."""
        x = self.day_lo[days] + rng.random(len(days)) * (self.day_hi - self.day_lo)[days]
        hour = np.clip(np.searchsorted(self.cum, x, side="right") - 1, 0, len(self.weight) - 1)
        into = np.clip((x - self.cum[hour]) / self.weight[hour], 0, 1)
        return np.sort(self.lo[hour] + (into * (self.length[hour] - 1)).astype(np.int64))

    def events(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n sorted timestamps over the whole window; the first at its very start."""
        times = self.sample(rng, np.repeat(np.arange(self.days), self.day_counts(rng, n)))
        times[0] = self.start  # so the first workflows have a user, brand and project to run for
        return times


class Writer:
    """COPYs column lists into the source tables and counts the rows."""

    def __init__(self, cur, schema: str, progress: Progress | None):
        self.cur, self.schema, self.progress = cur, schema, progress
        self.counts = {table: 0 for table in TABLE_COLUMNS}
        self.expected: dict[str, int] = {}

    def truncate(self) -> None:
        tables = ", ".join(f"{self.schema}.{table}" for table in TABLE_COLUMNS)
        self.cur.execute(f"truncate table {tables} restart identity cascade")

    def write(self, table: str, columns: list[list[str]]) -> None:
        if columns[0]:
            rows = "\n".join(map("\t".join, zip(*columns))) + "\n"
            self.cur.copy_expert(f"copy {self.schema}.{table} ({TABLE_COLUMNS[table]}) from stdin",
                                 io.BytesIO(rows.encode()))
        self.counts[table] += len(columns[0])
        if self.progress:
            done = self.counts[table]
            self.progress(table, done, max(done, self.expected.get(table, done)))

    def finish(self) -> None:
        """Point each id sequence past the rows written, report final totals, ANALYZE."""
        for table, rows in self.counts.items():
            name = f"{self.schema}.{table}"
            self.cur.execute(f"select setval(pg_get_serial_sequence(%s, 'id'), {rows + 1}, false)", (name,))
            self.cur.execute(f"analyze {name}")
            if self.progress:
                self.progress(table, rows, rows)


def ints(values: np.ndarray) -> list[str]:
    return list(map(str, values.tolist()))


def labels(names, index: np.ndarray) -> list[str]:
    return list(map(names.__getitem__, index.tolist()))


def stamps(ms: np.ndarray) -> list[str]:
    return np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms", timezone="UTC").tolist()


def nullable(n: int, where: np.ndarray, values: list[str]) -> list[str]:
    """A column of \\N with `values` at the rows of `where` (a boolean mask)."""
    column = ["\\N"] * n
    for i, value in zip(np.flatnonzero(where).tolist(), values):
        column[i] = value
    return column
