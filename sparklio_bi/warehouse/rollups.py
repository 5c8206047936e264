"""The rollups behind the dashboards: analytics.<name>_hours, <name>_rollup and <name>_months kept
current incrementally.

Each rollup holds, per period and dimension values, the sums its `<name>_buckets(period, since,
until)` function computes from a raw view (sql/owned/rollup_buckets__v4.sql): `<name>_hours`
every whole hour (in SPARKLIO_TIMEZONE) before the watermark and the watermark's own hour up to
it, `<name>_rollup` every whole day before the watermark's day (added up from its hours),
`<name>_months` every whole month before the watermark's month (added up from its days). The
charts read `<name>_stats_between(since, until)`: whole months (for totals) and days from the
tables, the hours at the range's ends, and the seconds before the first whole hour, after the
last one and after the watermark from the raw view (or taken off a whole hour when fewer); so a
chart equals its raw view for any range, at once. A rollup with brand columns also holds each of
the three added up over every brand (`<name>_hours_all_brands`...: a few rows a period instead of
one per brand), read by `<name>_stats_all_brands_between` for a query that names no brand
column (sql/owned/rollup_all_brands_buckets__v1.sql).

A refresh (every 30 s while Superset is served, or `sparklio-bi rollups refresh`) moves the
watermark to its own snapshot's now(), records that snapshot (rollup_state.snapshot: an end is
taken off a whole row only when the refresh saw every row taken off) and recomputes only the
hours that changed, then the days and whole months holding them, in one REPEATABLE READ
transaction:
- the hours from the last watermark's hour to the new one (and, after midnight, the days they
  complete);
- the hours of rows inserted or updated since the last refresh, found through the rows' `xmin`
  (the transaction that wrote them): on the recent end of the id index for the large,
  append-mostly tables (agent_logs, router_logs) plus failures of the last two days (a failure
  turns into a recovery in place), and over the whole table for workflows and assets (they
  change status and review in place, and are a fifth of the size).
What that misses (a row deleted, a rollup damaged by hand) is found by comparing the rollups with
the raw views (rollup_checks.py): all at once by a one-off refresh, a few slices per refresh by
`--every`, so that every day is compared once a round without a burst.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import periods, user_rollups
from sparklio_bi.warehouse.refreshed import Refreshed
from sparklio_bi.warehouse.rollup_checks import VERIFY_DAYS, Progress, RoundRobin, drifted_days
from sparklio_bi.warehouse.rollup_definitions import ROLLUPS, Rollup

LOCK = 72_051_777  # pg_advisory_xact_lock key: one refresh at a time
RECENT_IDS = 100_000  # how far below the last id seen a refresh looks for late commits
RECOVERY_WINDOW = "2 days"  # failures older than this that recover show after `refresh --full`


def refresh(conn, settings: config.Settings, full: bool = False, verify_days: int = 0,
            checking: RoundRobin | None = None) -> list[Refreshed]:
    """Bring every rollup up to date on `conn` (psycopg2) and commit nothing: the caller owns the
    transaction (REPEATABLE READ, so the changes found and the sums written agree). With
    `verify_days`, the days of that many last days, and of every older month, whose counts differ
    from the raw view's (a rollup damaged by hand, a row deleted, a write the change tracking
    missed) are recomputed too; with `checking`, those of its next few slices only."""
    a = settings.analytics_schema
    with conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(%s)", (LOCK,))
        cur.execute("select now(), date_trunc('day', now(), %s), txid_snapshot_xmin(txid_current_snapshot())",
                    (settings.timezone,))
        now, today, snapshot_xmin = cur.fetchone()
        drift = {}
        if checking is not None and not full:
            drift = checking.check_some(cur, settings)
        elif verify_days and not full:
            drift = drifted_days(cur, settings, verify_days, history=True)
        done = [_refresh_one(cur, settings, rollup, full, now, today, snapshot_xmin, drift.get(rollup.name, []))
                for rollup in ROLLUPS]
        done.append(user_rollups.refresh_user_projects(cur, settings, now, snapshot_xmin))
        done.append(user_rollups.refresh_active_users(cur, settings, now, snapshot_xmin))
        agents = done[0]  # the Agent and Model filters' options: pairs of the hours recomputed
        cur.execute(f"""
            insert into {a}.agent_model_pairs (agent_name, model)
            select distinct agent_name, model from {a}.agent_hours where period_start >= %s
            on conflict do nothing""", (agents.since or now,))
    return done


def refresh_in_transaction(url: str, settings: config.Settings, full: bool = False, verify_days: int = 0,
                           checking: RoundRobin | None = None) -> list[Refreshed]:
    """`refresh` in a REPEATABLE READ transaction of its own, committed."""
    with _refresh_transaction(url) as conn:
        return refresh(conn, settings, full, verify_days, checking)


def refresh_repeatedly(url: str, settings: config.Settings, every: float | None, full: bool,
                       report: Callable[[list[Refreshed], float, Progress | None], None],
                       on_error: Callable[[str], None], checking: RoundRobin | None = None) -> None:
    """Refresh once (`every` None: a failure raises), recomputing every day that differs from the
    raw views (the last VERIFY_DAYS days, and those of any older month whose count differs), or
    every `every` seconds until interrupted (a failure is reported and tried again at the next
    beat), each refresh checking the next slices of `checking`'s round (VERIFY_BUDGET_SECONDS of
    them) rather than all at once: about 11 s of PostgreSQL CPU at 10 million agent_logs. `report`
    gets what each refresh did and checked."""
    checking = RoundRobin() if checking is None else checking
    once = every is None  # one refresh: everything checked at once, no beat to spread it over
    while True:
        started = time.monotonic()
        try:
            done = refresh_in_transaction(url, settings, full=full, verify_days=VERIFY_DAYS if once else 0,
                                          checking=None if once else checking)
        except (ExpectedError, psycopg2.Error) as exc:
            detail = " ".join(str(exc).split())
            if every is None:
                raise database.DatabaseError(f"rollup refresh failed: {detail}") from None
            on_error(f"rollup refresh failed, trying again in {every:g}s: {detail}")
        else:
            report(done, time.monotonic() - started, checking.committed())
            full = False
        if every is None:
            return
        time.sleep(max(0.0, every - (time.monotonic() - started)))


@contextlib.contextmanager
def _refresh_transaction(url: str) -> Iterator[Any]:
    """A REPEATABLE READ transaction holding the refresh lock, committed at the end (rolled back
    on any error). The lock is taken first, outside it: a snapshot taken while another refresh
    still ran would see that refresh's state rows change under it (PostgreSQL: "could not
    serialize access due to concurrent update")."""
    with database.connect(url, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s)", (LOCK,))  # released when the connection closes
        conn.autocommit = False
        conn.set_session(isolation_level="REPEATABLE READ")
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def _refresh_one(cur, settings: config.Settings, rollup: Rollup, full: bool, now: datetime,
                 today: datetime, snapshot_xmin: int, drifted: list[datetime] = ()) -> Refreshed:
    a, s = settings.analytics_schema, settings.source_schema
    zone = ZoneInfo(settings.timezone)
    started = time.monotonic()
    cur.execute(f"select watermark, last_id, last_xmin from {a}.rollup_state where rollup = %s for update",
                (rollup.name,))
    state = cur.fetchone()
    cur.execute(f"select coalesce(max(id), 0) from {s}.{rollup.source}")
    last_id = cur.fetchone()[0]
    if state is None or full:
        for table in _tables(rollup):
            cur.execute(f"delete from {a}.{table}")
        hours, days, months = [(None, now)], [(None, today)], [(None, periods.month_of(today, zone))]
        recomputed = 3  # all of them, counted as one build of each table
    else:
        watermark, previous_id, previous_xmin = state
        changed = _changed_hours(cur, settings, rollup, watermark, previous_id, previous_xmin)
        changed |= set(periods.hours_between(periods.hour_of(watermark, zone), now))  # the hours the watermark passed
        for day in drifted:
            changed |= set(periods.hours_between(day, periods.days_before(day, -1, zone)))
        changed = {hour for hour in changed if hour < now}  # a drifted today's later hours hold nothing
        past_days = sorted({periods.day_of(hour, zone) for hour in changed} - {today})  # today has no day row yet
        past_months = sorted({periods.month_of(day, zone) for day in past_days} - {periods.month_of(today, zone)})
        hours = periods.runs(sorted(changed), timedelta(hours=1), now)
        days = periods.runs(past_days, None, today, zone)
        months = [(month, periods.next_month(month, zone)) for month in past_months]
        recomputed = len(changed) + len(past_days) + len(past_months)
    rows = 0
    grains = ((hours, f"{rollup.name}_hours", f"{rollup.name}_buckets('hour', %s, %s)"),
              (days, rollup.table, f"{rollup.name}_days(%s, %s)"),
              (months, f"{rollup.name}_months", f"{rollup.name}_month_totals(%s, %s)"))  # each after what it adds up
    for runs, table, function in grains:
        for since, until in runs:
            rows += _recompute(cur, a, table, f"select * from {a}.{function}", since, until)
            rows += _add_up_brands(cur, a, rollup, table, since, until)
    if full:
        for table in _tables(rollup):
            cur.execute(f"analyze {a}.{table}")
    cur.execute(f"""
        insert into {a}.rollup_state (rollup, watermark, last_id, last_xmin, refreshed_at, snapshot)
        values (%(rollup)s, %(now)s, %(id)s, %(xmin)s, now(), pg_current_snapshot())
        on conflict (rollup) do update set watermark = excluded.watermark, last_id = excluded.last_id,
            last_xmin = excluded.last_xmin, refreshed_at = excluded.refreshed_at,
            snapshot = excluded.snapshot""",
                {"rollup": rollup.name, "now": now, "id": last_id, "xmin": snapshot_xmin})
    starts = [start for start, _ in hours]
    since = "-infinity" if None in starts else min(starts, default=None)
    return Refreshed(rollup.name, recomputed, rows, time.monotonic() - started, since,
                     tuple(drifted) if state is not None and not full else ())


def _recompute(cur, a: str, table: str, query: str, since: datetime | None, until: datetime) -> int:
    """Replace `table`'s rows of [since, until) (None: from the start) by what `query` (a select
    with two placeholders: since, until) gives."""
    if since is not None:
        cur.execute(f"delete from {a}.{table} where period_start >= %s and period_start < %s", (since, until))
    cur.execute(f"insert into {a}.{table} {query} order by 1",  # a period's rows together
                (since or "-infinity", until))
    return cur.rowcount


def _tables(rollup: Rollup) -> list[str]:
    """Every table `rollup` writes: its hours, days and months, and those over all brands."""
    tables = [f"{rollup.name}_hours", rollup.table, f"{rollup.name}_months"]
    return [f"{table}{family}" for family in rollup.families for table in tables]


def _add_up_brands(cur, a: str, rollup: Rollup, table: str, since: datetime | None, until: datetime) -> int:
    """Replace `table`_all_brands' rows of [since, until) by `table`'s, added up over every brand
    (nothing for a rollup without brand columns)."""
    if not rollup.other_dims:
        return 0
    dims = ", ".join(rollup.other_dims)
    return _recompute(cur, a, f"{table}_all_brands",
                      f"select period_start, null, null, {dims}, {', '.join(f'sum({c})' for c in rollup.sums)} "
                      f"from {a}.{table} where period_start >= %s and period_start < %s group by period_start, {dims}",
                      since, until)


def _changed_hours(cur, settings: config.Settings, rollup: Rollup, watermark: datetime, previous_id: int,
                   previous_xmin: int) -> set[datetime]:
    """Hours (before the watermark) holding rows written by transactions the last refresh did not
    see: a row's xmin is at or above the last refresh's snapshot xmin. `age()` compares the
    32-bit xids the way PostgreSQL does, across wraparound."""
    s = settings.source_schema
    params = {"tz": settings.timezone, "watermark": watermark, "xid": str(previous_xmin % 2**32),
              "id": previous_id - RECENT_IDS, "window": RECOVERY_WINDOW}
    unseen = "age(xmin) <= age(%(xid)s::xid)"
    where = [unseen if rollup.whole_table else f"id > %(id)s and {unseen}"]
    if rollup.recent_failures:
        where.append(f"status <> 'success' and created_at >= %(watermark)s - %(window)s::interval and {unseen}")
    query = " union ".join(
        f"select date_trunc('hour', created_at, %(tz)s) from {s}.{rollup.source} "
        f"where created_at < %(watermark)s and {condition}" for condition in where)
    cur.execute(query, params)
    return {row[0] for row in cur.fetchall()}


def status(url: str, settings: config.Settings) -> list[tuple]:
    """(rollup, watermark, refreshed_at, rows) of every rollup."""
    a = settings.analytics_schema
    with database.connect(url) as conn, conn.cursor() as cur:
        out = []
        for rollup in ROLLUPS:
            cur.execute(f"select watermark, refreshed_at from {a}.rollup_state where rollup = %s", (rollup.name,))
            state = cur.fetchone() or (None, None)
            cur.execute(f"select (select count(*) from {a}.{rollup.table}) + "
                        f"(select count(*) from {a}.{rollup.name}_hours)")
            out.append((rollup.name, *state, cur.fetchone()[0]))
        for name, table in user_rollups.TABLES.items():
            cur.execute(f"select watermark, refreshed_at, (select count(*) from {a}.{table}) "
                        f"from {a}.rollup_state where rollup = %s", (name,))
            out += [(name, *row) for row in cur.fetchall()]
        return out


