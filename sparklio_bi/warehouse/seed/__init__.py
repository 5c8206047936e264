"""Realistic, deterministic demo data for Sparklio's seven source tables (the last 90 days), and the
service-metrics sink's minutes of its API over the same days (api_traffic, once the tables are migrated).

Scale 1 is 10,000 agent executions; the other tables follow in proportion. Everything is drawn
from one numpy Generator, vectorised a chunk of days at a time and streamed in with COPY, inside
one transaction: a failed seed leaves the previous rows as they were.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import migrate, rollups
from sparklio_bi.warehouse.seed import api_traffic
from sparklio_bi.warehouse.seed.activity import write_activity, write_owners
from sparklio_bi.warehouse.seed.profile import ScaleError, max_scale, sizes
from sparklio_bi.warehouse.seed.timeline import DAY, EPOCH, WINDOW_DAYS, Progress, Timeline, Writer

__all__ = ["NotDemoData", "ScaleError", "check_replaceable", "max_scale", "seed", "seed_api_traffic", "sizes"]

class NotDemoData(ExpectedError):
    """The source tables are not the bundle's demo tables: seeding would destroy real rows."""


def check_replaceable(url: str, settings: config.Settings, replace_application_data: bool = False) -> None:
    """Refuse to seed over source tables sparklio-bi did not create (unless told loudly)."""
    if not replace_application_data and not migrate.is_demo(url, settings):
        safe = make_url(url).render_as_string(hide_password=True)
        raise NotDemoData(f"{safe}: the source tables were not created by sparklio-bi (no demo marker on "
                          f"{settings.source_schema}.agent_logs); seeding would delete their rows. Point "
                          "DATABASE_URL at a demo database, or pass --replace-application-data")


def seed(url: str, settings: config.Settings, scale: float, seed: int = 42, now: datetime | None = None,
         progress: Progress | None = None,
         replace_application_data: bool = False) -> dict[str, int]:
    """Replace the source tables' rows with demo data of the 90 days before `now`; rows per table.
    Only tables the bundle created (marked by `migrate.apply_source_ddl`) unless told otherwise."""
    size = sizes(scale)
    check_replaceable(url, settings, replace_application_data)
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    now_us = (now - EPOCH) // timedelta(microseconds=1)
    end = now_us // 1000  # whole milliseconds: never after `now`, never before `now` - 90 days
    rng = np.random.default_rng(seed)
    timeline = Timeline(end - WINDOW_DAYS * DAY + int(now_us % 1000 > 0), end)
    with database.connect(url) as conn, conn.cursor() as cur:
        out = Writer(cur, settings.source_schema, progress)
        out.truncate()
        projects = write_owners(rng, timeline, size, out)
        write_activity(rng, timeline, size, projects, out)
        out.finish()
        cur.execute("select to_regclass(%s)", (f"{settings.analytics_schema}.rollup_state",))
        if cur.fetchone()[0]:  # the rollups exist (migrated): rebuilt from the new rows, atomically
            rollups.refresh(conn, settings, full=True)
        api = _api_traffic(cur, settings, scale, seed, now)
        if api is not None:  # migrated, and no real writer's rows: the API Performance dashboard's demo traffic
            out.counts[api_traffic.TABLE] = api
            if progress:
                progress(api_traffic.TABLE, api, api)
    return out.counts


def seed_api_traffic(url: str, settings: config.Settings, scale: float, seed: int = 42,
                     now: datetime | None = None) -> int | None:
    """Only the API's demo minutes (a database seeded before it was migrated); rows, or None (see api_traffic.write)."""
    with database.connect(url) as conn, conn.cursor() as cur:
        return _api_traffic(cur, settings, scale, seed, now or datetime.now(timezone.utc))


def _api_traffic(cur, settings: config.Settings, scale: float, seed: int, now: datetime) -> int | None:
    last_minute = now.replace(second=0, microsecond=0)  # the sink writes a minute once it is complete
    return api_traffic.write(cur, settings.analytics_schema, scale, seed, last_minute - timedelta(days=WINDOW_DAYS),
                             last_minute)
