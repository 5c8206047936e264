"""The rollups of the projects per user, kept whole by every refresh in its transaction:
analytics.user_project_counts (chart 6.2, read by the users view) and the distinct (day, brand,
user) of analytics.active_user_days and active_user_days_all_brands (chart 6.1, read by
active_users_between). Each records the highest project id it saw in rollup_state; the views
add the projects above it, read live."""
from __future__ import annotations

import time
from datetime import datetime

from sparklio_bi import config
from sparklio_bi.warehouse.refreshed import Refreshed

# rollup_state row -> the table `rollups status` counts
TABLES = {"user_projects": "user_project_counts", "active_users": "active_user_days"}


def refresh_user_projects(cur, settings: config.Settings, now: datetime, snapshot_xmin: int) -> Refreshed:
    """Every user's project count as this snapshot sees the projects (a whole pass: about 20 ms at
    90,909 projects, so deletes and moves are caught too), written only where it changed, and
    the highest project id counted: the users view reads the projects above it live."""
    a = settings.analytics_schema
    started = time.monotonic()
    cur.execute(f"""
        with fresh as (select user_id, count(*) as project_count, max(created_at) as last_project_at
                       from {settings.source_schema}.projects group by user_id),
        gone as (delete from {a}.user_project_counts as kept
                 where not exists (select from fresh where fresh.user_id = kept.user_id) returning 1)
        insert into {a}.user_project_counts as kept select * from fresh
        on conflict (user_id) do update set project_count = excluded.project_count,
            last_project_at = excluded.last_project_at
        where (kept.project_count, kept.last_project_at)
            is distinct from (excluded.project_count, excluded.last_project_at)""")
    rows = cur.rowcount
    _record(cur, settings, "user_projects", now, snapshot_xmin)
    return Refreshed("user_projects", 1, rows, time.monotonic() - started)


def refresh_active_users(cur, settings: config.Settings, now: datetime, snapshot_xmin: int) -> Refreshed:
    """The distinct (day, brand, user) of every project as this snapshot sees them (a whole pass:
    about 0.3 s at 90,909 projects, so new projects, deletes and moves to another user, brand or
    day all show after one refresh), written only where they changed, and the highest project id
    seen: active_users_between reads the projects above it live."""
    a = settings.analytics_schema
    started = time.monotonic()
    cur.execute(f"""
        with fresh as materialized (select * from {a}.active_user_day_rows('-infinity', 'infinity')),
        gone as (delete from {a}.active_user_days as kept
                 where not exists (select from fresh where (fresh.day, fresh.brand_id, fresh.user_id)
                                   = (kept.day, kept.brand_id, kept.user_id)) returning 1),
        gone_all as (delete from {a}.active_user_days_all_brands as kept
                     where not exists (select from fresh where (fresh.day, fresh.user_id)
                                       = (kept.day, kept.user_id)) returning 1),
        added_all as (insert into {a}.active_user_days_all_brands
                      select distinct day, user_id from fresh order by 1 on conflict do nothing returning 1),
        added as (insert into {a}.active_user_days select * from fresh order by 1 on conflict do nothing returning 1)
        select (select count(*) from gone) + (select count(*) from gone_all) + (select count(*) from added_all)
            + (select count(*) from added)""")
    rows = cur.fetchone()[0]
    _record(cur, settings, "active_users", now, snapshot_xmin)
    return Refreshed("active_users", 1, rows, time.monotonic() - started)


def _record(cur, settings: config.Settings, rollup: str, now: datetime, snapshot_xmin: int) -> None:
    """rollup_state's row of `rollup`: this refresh's time, snapshot and highest project id."""
    cur.execute(f"""
        insert into {settings.analytics_schema}.rollup_state (rollup, watermark, last_id, last_xmin, refreshed_at,
                                                               snapshot)
        select %(rollup)s, %(now)s, coalesce(max(id), 0), %(xmin)s, now(), pg_current_snapshot()
        from {settings.source_schema}.projects
        on conflict (rollup) do update set watermark = excluded.watermark, last_id = excluded.last_id,
            last_xmin = excluded.last_xmin, refreshed_at = excluded.refreshed_at,
            snapshot = excluded.snapshot""", {"rollup": rollup, "now": now, "xmin": snapshot_xmin})
