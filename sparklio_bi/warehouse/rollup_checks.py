"""The rollups checked against their raw views, in slices small enough to spread over refreshes.

Per rollup the slices are: each of the last VERIFY_DAYS days and today (its hours, and its day
rows, counted against the raw view's rows), the month rows of the months touching those days and
of the last whole month (against the day rows), and each older month (its raw rows counted
against its day rows: one index range a table; its days compared as above only when they
differ). A slice returns the days whose counts differ (a differing month: its first day), which a
refresh in the same snapshot recomputes. `drifted_days` checks every slice at once (`rollups
refresh`, `doctor`); `RoundRobin` checks a few per refresh within VERIFY_BUDGET_SECONDS, so that
`rollups refresh --every` never checks them all in one burst: about 11 s of PostgreSQL CPU at 10
million agent_logs, which slowed the charts served meanwhile on two cores.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sparklio_bi import config
from sparklio_bi.warehouse import periods
from sparklio_bi.warehouse.rollup_definitions import ROLLUPS, Rollup

VERIFY_DAYS = 7  # how far back a check compares each rollup's daily counts with its raw view
VERIFY_BUDGET_SECONDS = 0.5  # the checks one refresh of `--every` does (at least one slice), in seconds


@dataclass(frozen=True)
class Slice:
    """One check of `rollup`: `kind` "day" (the hours and day rows of [since, until)), "months"
    (the month rows from `since`'s month, or the last whole month when later) or "history" (the
    whole older month [since, until))."""
    rollup: Rollup
    kind: str
    since: datetime
    until: datetime


def plan(cur, settings: config.Settings, days: int = VERIFY_DAYS, history: bool = False) -> list[Slice]:
    """Every slice of every rollup as of this snapshot, the last days first; with `history`, the
    older months too."""
    zone = ZoneInfo(settings.timezone)
    cur.execute("select date_trunc('day', now(), %s)", (settings.timezone,))
    today = cur.fetchone()[0]
    since = periods.days_before(today, days, zone)
    recent = [periods.days_before(today, n, zone) for n in range(days, -1, -1)]  # since ... today
    slices = [Slice(rollup, "day", day, periods.days_before(day, -1, zone)) for rollup in ROLLUPS for day in recent]
    slices += [Slice(rollup, "months", since, since) for rollup in ROLLUPS]
    if history:
        slices += [Slice(rollup, "history", month, until) for rollup in ROLLUPS
                   for month, until in _older_months(cur, settings, rollup, since, zone)]
    return slices


def check(cur, settings: config.Settings, piece: Slice) -> list[datetime]:
    """The days of `piece` whose counts differ from the raw view's (a month: its first day);
    nothing before its rollup's first refresh, or after its watermark."""
    a, rollup = settings.analytics_schema, piece.rollup
    cur.execute(f"select watermark, date_trunc('day', watermark, %s) from {a}.rollup_state where rollup = %s",
                (settings.timezone, rollup.name))
    state = cur.fetchone()
    if state is None:
        return []
    watermark, watermark_day = state
    if piece.kind == "months":
        return _months_differing(cur, settings, rollup, piece.since, watermark_day)
    if piece.kind == "history" and not _month_differs(cur, a, rollup, piece.since, piece.until):
        return []
    return _days_differing(cur, settings, rollup, piece.since, min(piece.until, watermark),
                           min(piece.until, watermark_day))


def drifted_days(cur, settings: config.Settings, days: int = VERIFY_DAYS,
                 history: bool = False) -> dict[str, list[datetime]]:
    """Per rollup, the days among the last `days` (in SPARKLIO_TIMEZONE, up to its watermark)
    whose row count in its hours, or in its day row (per brand or over all brands), differs from
    its raw view's, and the first day of each whole month touching them (and of the last whole
    month) whose month rows differ from its days (recomputing a day recomputes its month and the
    rows over all brands); cheap: one index range a table. With `history`, also the days before
    those whose counts differ, found month by month (a row deleted or moved a year ago): one
    count of an index range per month and table, then the days of the months that differ."""
    return merge(settings, ((piece, check(cur, settings, piece)) for piece in plan(cur, settings, days, history)))


def merge(settings: config.Settings, checked: Iterable[tuple[Slice, list[datetime]]]) -> dict[str, list[datetime]]:
    """Per rollup, the days its slices found, and the first days of the months found that hold
    none of those days (recomputing a day recomputes its month)."""
    zone = ZoneInfo(settings.timezone)
    days: dict[str, set[datetime]] = {}
    months: dict[str, set[datetime]] = {}
    for piece, found in checked:
        (months if piece.kind == "months" else days).setdefault(piece.rollup.name, set()).update(found)
    out = {}
    for rollup in ROLLUPS:
        differing = days.get(rollup.name, set())
        covered = {periods.month_of(day, zone) for day in differing}
        differing |= {month for month in months.get(rollup.name, ()) if month not in covered}
        if differing:
            out[rollup.name] = sorted(differing)
    return out


@dataclass(frozen=True)
class Progress:
    """What the spread check did in one committed refresh."""
    checked: tuple[Slice, ...]  # in this refresh
    position: int  # slices of the round checked so far
    total: int  # slices in the round
    seconds: float  # spent checking in this refresh
    round_seconds: float | None = None  # the round ended here: from its first check to its last
    round_work: float = 0.0  # the round's time spent checking, over all its refreshes


@dataclass(frozen=True)
class Round:
    """The slices of one round, planned when it began, and how far it got."""
    slices: tuple[Slice, ...] = ()
    position: int = 0  # slices checked
    started: float = 0.0  # time.monotonic() at its first check
    work: float = 0.0  # seconds spent checking so far


class RoundRobin:
    """Checks the slices of a round a few per refresh, VERIFY_BUDGET_SECONDS' worth (at least one),
    resuming after the last committed refresh's (a refresh rolled back is checked again); a round
    is planned when the last one ended, so every day of every rollup is checked once a round."""

    def __init__(self, budget: float = VERIFY_BUDGET_SECONDS):
        self.budget = budget
        self.round = Round()
        self._pending: tuple[Round, Progress] | None = None

    def check_some(self, cur, settings: config.Settings) -> dict[str, list[datetime]]:
        """The days differing in the next slices, checked until the budget is spent."""
        started = time.monotonic()
        current = self.round
        if current.position >= len(current.slices):
            current = Round(tuple(plan(cur, settings, history=True)), 0, started)
        position, checked = current.position, []
        with _one_core(cur):
            while position < len(current.slices) and (position == current.position
                                                      or time.monotonic() - started < self.budget):
                checked.append((current.slices[position], check(cur, settings, current.slices[position])))
                position += 1
        ended = time.monotonic()
        reached = replace(current, position=position, work=current.work + ended - started)
        last = position >= len(current.slices)
        self._pending = (reached, Progress(current.slices[current.position:position], position, len(current.slices),
                                           ended - started, ended - current.started if last else None,
                                           reached.work if last else 0.0))
        return merge(settings, checked)

    def committed(self) -> Progress | None:
        """Move past the slices the last `check_some` checked, its refresh having committed."""
        if self._pending is None:
            return None
        self.round, progress = self._pending
        self._pending = None
        return progress


@contextlib.contextmanager
def _one_core(cur) -> Iterator[None]:
    """No parallel workers for the queries inside (in this transaction): the checks leave the
    other cores to the charts served meanwhile, for little more time (a round at scale 300: 1.84 s
    on one core, 1.64 s with the two workers a month's count was planned with)."""
    cur.execute("select current_setting('max_parallel_workers_per_gather'), "
                "set_config('max_parallel_workers_per_gather', '0', true)")
    parallel = cur.fetchone()[0]
    yield
    cur.execute("select set_config('max_parallel_workers_per_gather', %s, true)", (parallel,))


def _days_differing(cur, settings: config.Settings, rollup: Rollup, since: datetime, until: datetime,
                    days_until: datetime) -> list[datetime]:
    """The days of [since, until) whose hours, or whose day rows (before `days_until`), count
    other than the raw view's rows (counted once)."""
    a = settings.analytics_schema
    compare = " union ".join(f"""
        select coalesce(hours.day, raw.day) from (
            select date_trunc('day', period_start, %(tz)s) as day, sum({rollup.count}) as n
            from {a}.{rollup.name}_hours{family}
            where period_start >= %(since)s and period_start < %(until)s group by 1) as hours
        full join raw on hours.day = raw.day
        where hours.n is distinct from raw.n
        union
        select coalesce(days.day, raw.day) from (
            select period_start as day, sum({rollup.count}) as n from {a}.{rollup.table}{family}
            where period_start >= %(since)s and period_start < %(days_until)s group by 1) as days
        full join raw on days.day = raw.day
        where days.n is distinct from raw.n and coalesce(days.day, raw.day) < %(days_until)s"""
                         for family in rollup.families)
    cur.execute(f"""
        with raw as materialized (
            select date_trunc('day', created_at, %(tz)s) as day, count(*) as n from {a}.{rollup.raw}
            where created_at >= %(since)s and created_at < %(until)s group by 1)
        {compare} order by 1""", {"tz": settings.timezone, "since": since, "until": until, "days_until": days_until})
    return [row[0] for row in cur.fetchall()]


def _months_differing(cur, settings: config.Settings, rollup: Rollup, since: datetime,
                      days_until: datetime) -> list[datetime]:
    """The first days of the whole months (from `since`'s month, or the last whole one before
    `days_until`'s month) whose month rows add up other than their day rows."""
    a = settings.analytics_schema
    first_month = ("date_trunc('month', least(%(since)s::timestamptz, "
                   "(%(days_until)s::timestamptz at time zone %(tz)s - interval '1 month') at time zone %(tz)s), %(tz)s)")
    cur.execute(" union ".join(f"""
        select coalesce(months.month, days.month) from (
            select period_start as month, sum({rollup.count}) as n from {a}.{rollup.name}_months{family}
            where period_start >= {first_month} group by 1) as months
        full join (
            select date_trunc('month', period_start, %(tz)s) as month, sum({rollup.count}) as n
            from {a}.{rollup.table}
            where period_start >= {first_month}
                and period_start < date_trunc('month', %(days_until)s, %(tz)s) group by 1) as days
        on months.month = days.month
        where months.n is distinct from days.n""" for family in rollup.families) + " order by 1",
                {"tz": settings.timezone, "since": since, "days_until": days_until})
    return [row[0] for row in cur.fetchall()]


def _older_months(cur, settings: config.Settings, rollup: Rollup, before: datetime,
                  zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The months (first day, end: the next month's or `before`) from the first day row, or the
    first row of the source table, up to `before`. The raw view's rows are some of its source's,
    with its created_at; the table's min is one index probe where the view's (joins) is a scan."""
    cur.execute(f"select least((select min(period_start) from {settings.analytics_schema}.{rollup.table}), "
                f"(select min(created_at) from {settings.source_schema}.{rollup.source}))")
    first = cur.fetchone()[0]
    months, month = [], periods.month_of(first, zone) if first is not None else before
    while month < before:
        until = min(periods.next_month(month, zone), before)
        months.append((month, until))
        month = until
    return months


def _month_differs(cur, a: str, rollup: Rollup, since: datetime, until: datetime) -> bool:
    """Whether [since, until)'s raw row count differs from its day rows' (per brand or over all brands)."""
    sums = ", ".join(f"(select sum({rollup.count}) from {a}.{rollup.table}{family} "
                     f"where period_start >= %(since)s and period_start < %(until)s)" for family in rollup.families)
    cur.execute(f"select (select count(*) from {a}.{rollup.raw} where created_at >= %(since)s "
                f"and created_at < %(until)s), {sums}", {"since": since, "until": until})
    raw, *rolled = cur.fetchone()
    return any((n or 0) != raw for n in rolled)
