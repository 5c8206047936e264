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
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import periods, user_rollups
from sparklio_bi.warehouse.refreshed import Refreshed

LOCK = 72_051_777  # pg_advisory_xact_lock key: one refresh at a time
RECENT_IDS = 100_000  # how far below the last id seen a refresh looks for late commits
RECOVERY_WINDOW = "2 days"  # failures older than this that recover show after `refresh --full`


@dataclass(frozen=True)
class Rollup:
    name: str  # rollup_state.rollup; tables <name>_rollup, function <name>_buckets, view <name>_stats
    source: str  # the application table whose changes it follows
    whole_table: bool  # look for changed rows in the whole table (else in the recent ids)
    recent_failures: bool = False  # also failures of the last RECOVERY_WINDOW (recoveries)
    raw: str = ""  # the analytics view its buckets add up (one rollup row counts `count` of its rows)
    count: str = ""  # the rollup's column holding that count
    # with brand columns: its other dimensions and its sums, added up over every brand in the
    # <name>_hours_all_brands, <name>_rollup_all_brands and <name>_months_all_brands tables
    other_dims: tuple[str, ...] = ()
    sums: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"{self.name}_rollup"


ROLLUPS = (
    Rollup("agent", "agent_logs", whole_table=False, recent_failures=True, raw="agent_logs", count="executions",
           other_dims=("agent_name", "model"), sums=("executions", "successes", "latency_ms_sum")),
    Rollup("error", "agent_logs", whole_table=False, recent_failures=True, raw="errors", count="failures",
           other_dims=("agent_name", "model", "error_type"),
           sums=("failures", "still_failing", "recovered", "recovery_seconds_sum")),
    Rollup("router", "router_logs", whole_table=False, raw="router_logs", count="decisions"),
    Rollup("workflow", "workflows", whole_table=True, raw="workflows", count="runs",
           other_dims=("status",), sums=("runs", "durations", "duration_seconds_sum")),
    Rollup("asset", "assets", whole_table=True, raw="assets", count="assets",
           other_dims=("asset_type",), sums=("assets", "reviewed", "approved", "scored", "review_score_sum")),
)
VERIFY_DAYS = 7  # how far back a check compares each rollup's daily counts with its raw view


def refresh(conn, settings: config.Settings, full: bool = False,
            verify_days: int = 0) -> list[Refreshed]:
    """Bring every rollup up to date on `conn` (psycopg2) and commit nothing: the caller owns the
    transaction (REPEATABLE READ, so the changes found and the sums written agree). With
    `verify_days`, the days of that many last days, and of every older month, whose counts differ
    from the raw view's (a rollup damaged by hand, a row deleted, a write the change tracking
    missed) are recomputed too."""
    a = settings.analytics_schema
    with conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(%s)", (LOCK,))
        cur.execute("select now(), date_trunc('day', now(), %s), txid_snapshot_xmin(txid_current_snapshot())",
                    (settings.timezone,))
        now, today, snapshot_xmin = cur.fetchone()
        drift = drifted_days(cur, settings, verify_days, history=True) if verify_days and not full else {}
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


def refresh_in_transaction(url: str, settings: config.Settings, full: bool = False,
                           verify_days: int = 0) -> list[Refreshed]:
    """`refresh` in a REPEATABLE READ transaction of its own, committed."""
    with _refresh_transaction(url) as conn:
        return refresh(conn, settings, full, verify_days)


VERIFY_EVERY_SECONDS = 600  # a repeated refresh compares the last days with the raw views this often


def refresh_repeatedly(url: str, settings: config.Settings, every: float | None, full: bool,
                       report: Callable[[list[Refreshed], float], None], on_error: Callable[[str], None]) -> None:
    """Refresh once (`every` None: a failure raises) or every `every` seconds until interrupted
    (a failure is reported and tried again at the next beat); the first refresh, and one every
    VERIFY_EVERY_SECONDS, also recomputes the days that differ from the raw views (the last
    VERIFY_DAYS days, and those of any older month whose count differs)."""
    verified_at = None
    while True:
        started = time.monotonic()
        verify = verified_at is None or started - verified_at >= VERIFY_EVERY_SECONDS
        try:
            done = refresh_in_transaction(url, settings, full=full, verify_days=VERIFY_DAYS if verify else 0)
        except (ExpectedError, psycopg2.Error) as exc:
            detail = " ".join(str(exc).split())
            if every is None:
                raise database.DatabaseError(f"rollup refresh failed: {detail}") from None
            on_error(f"rollup refresh failed, trying again in {every:g}s: {detail}")
        else:
            report(done, time.monotonic() - started)
            full = False
            verified_at = started if verify else verified_at
        if every is None:
            return
        time.sleep(max(0.0, every - (time.monotonic() - started)))


def drifted_days(cur, settings: config.Settings, days: int = VERIFY_DAYS,
                 history: bool = False) -> dict[str, list[datetime]]:
    """Per rollup, the days among the last `days` (in SPARKLIO_TIMEZONE, up to its watermark)
    whose row count in its hours, or in its day row (per brand or over all brands), differs from
    its raw view's, and the first day of each whole month touching them (and of the last whole
    month) whose month rows differ from its days (recomputing a day recomputes its month and the
    rows over all brands); cheap: one index range a table. With `history`, also the days before
    those whose counts differ, found month by month (a row deleted or moved a year ago): one
    count of an index range per month and table, then the days of the months that differ."""
    a, zone = settings.analytics_schema, settings.timezone
    cur.execute("select date_trunc('day', now(), %s)", (zone,))
    today = cur.fetchone()[0]
    since = periods.days_before(today, days, ZoneInfo(zone))
    # the months touching those days, and always the last whole one
    first_month = ("date_trunc('month', least(%(since)s::timestamptz, "
                   "(%(days_until)s::timestamptz at time zone %(tz)s - interval '1 month') at time zone %(tz)s), %(tz)s)")
    found = {}
    for rollup in ROLLUPS:
        cur.execute(f"select watermark, date_trunc('day', watermark, %s) from {a}.rollup_state where rollup = %s",
                    (zone, rollup.name))
        row = cur.fetchone()
        if row is None:
            continue
        params = {"tz": zone, "since": since, "until": row[0], "days_until": row[1]}
        raw = (f"select date_trunc('day', created_at, %(tz)s) as day, count(*) as n from {a}.{rollup.raw} "
               f"where created_at >= %(since)s and created_at < %(until)s group by 1")
        families = [""] + (["_all_brands"] if rollup.other_dims else [])  # the rows per brand, and over all
        days_query = " union ".join(f"""
            select coalesce(hours.day, raw.day) from (
                select date_trunc('day', period_start, %(tz)s) as day, sum({rollup.count}) as n
                from {a}.{rollup.name}_hours{family}
                where period_start >= %(since)s and period_start < %(until)s group by 1) as hours
            full join ({raw}) as raw on hours.day = raw.day
            where hours.n is distinct from raw.n
            union
            select coalesce(days.day, raw.day) from (
                select period_start as day, sum({rollup.count}) as n from {a}.{rollup.table}{family}
                where period_start >= %(since)s and period_start < %(days_until)s group by 1) as days
            full join ({raw}) as raw on days.day = raw.day
            where days.n is distinct from raw.n and coalesce(days.day, raw.day) < %(days_until)s"""
                                for family in families) + " order by 1"
        cur.execute(days_query, params)
        differing = [r[0] for r in cur.fetchall()]
        if history:
            for month, until in _older_months_differing(cur, a, rollup, families, since, ZoneInfo(zone)):
                cur.execute(days_query, {**params, "since": month, "until": until, "days_until": until})
                differing += [r[0] for r in cur.fetchall()]
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
            where months.n is distinct from days.n""" for family in families) + " order by 1", params)
        months_of_days = {periods.month_of(day, ZoneInfo(zone)) for day in differing}  # recomputed with their days
        differing += [r[0] for r in cur.fetchall() if r[0] not in months_of_days]  # a month: its first day
        if differing:
            found[rollup.name] = sorted(differing)
    return found


def _older_months_differing(cur, a: str, rollup: Rollup, families: list[str], before: datetime,
                            zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """The months (first day, end: the next month's or `before`) before `before` whose raw row
    count differs from the rollup's day rows' (per brand or over all brands)."""
    cur.execute(f"select least((select min(period_start) from {a}.{rollup.table}), "
                f"(select min(created_at) from {a}.{rollup.raw}))")
    first = cur.fetchone()[0]
    found, month = [], periods.month_of(first, zone) if first is not None else before
    while month < before:
        until = min(periods.next_month(month, zone), before)
        sums = ", ".join(f"(select sum({rollup.count}) from {a}.{rollup.table}{family} "
                         f"where period_start >= %(since)s and period_start < %(until)s)" for family in families)
        cur.execute(f"select (select count(*) from {a}.{rollup.raw} where created_at >= %(since)s "
                    f"and created_at < %(until)s), {sums}", {"since": month, "until": until})
        raw, *rolled = cur.fetchone()
        if any((n or 0) != raw for n in rolled):
            found.append((month, until))
        month = until
    return found


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
    return tables + [f"{table}_all_brands" for table in tables] if rollup.other_dims else tables


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


