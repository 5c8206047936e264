"""The reporting time zone the installed rollups cut days in, and redefining them in another one."""
from __future__ import annotations

import re
import time

from sparklio_bi import config
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import views
from sparklio_bi.warehouse.rollups import _refresh_transaction, refresh

# every function that cuts days or hours (each defined with create or replace)
BUCKETS_FILES = ("rollup_buckets__v4.sql", "rollup_all_brands_buckets__v1.sql", "active_users_buckets__v1.sql")


_ZONE_IN_BUCKETS = re.compile(r"date_trunc\(period, created_at, '([^']+)'\)")


def zone_of_install(cur, settings: config.Settings) -> str | None:
    """The time zone the installed `_buckets` functions cut days in (None: no rollups yet)."""
    cur.execute("select p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = %s and p.proname = 'agent_buckets'", (settings.analytics_schema,))
    row = cur.fetchone()
    match = _ZONE_IN_BUCKETS.search(row[0]) if row else None
    return match[1] if match else None


def ensure_timezone(url: str, settings: config.Settings) -> str | None:
    """After SPARKLIO_TIMEZONE changed: the `_buckets` functions redefined in the new zone and
    every rollup rebuilt, in one transaction (locked as a refresh is). Returns what was done (None:
    nothing to do). A view that names the zone (none at head) is migrate.repair_views' job."""
    with database.connect(url) as conn, conn.cursor() as cur:
        if zone_of_install(cur, settings) in (None, settings.timezone):
            return None
    started = time.monotonic()
    with _refresh_transaction(url) as conn:
        with conn.cursor() as cur:
            installed = zone_of_install(cur, settings)
            for name in BUCKETS_FILES:
                cur.execute(views.render(views.OWNED_DIR / name, settings))
        refresh(conn, settings, full=True)
    return (f"reporting time zone {installed} -> {settings.timezone}: day buckets redefined, rollups rebuilt "
            f"({time.monotonic() - started:.0f}s)")
