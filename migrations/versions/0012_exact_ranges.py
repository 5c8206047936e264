"""Exact numbers for every time range: an hours table beside each rollup (<name>_hours, every
hour before the watermark), <name>_rollup keeping only whole days, and the functions
<name>_stats_between(since, until) the charts read (sql/owned/rollup_buckets__v2.sql); the
*_stats views v2 and workflow_daily v4 are those functions over no range.

The hours are built from the raw views once (about as long as 0007's first build).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute, grant_select, revoke_select
from sparklio_bi.warehouse.migration_ops import create_view, drop_view, run_owned_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NAMES = ("agent", "error", "router", "workflow", "asset")
RANGE = "(timestamptz, timestamptz)"
V1_FUNCTIONS = tuple(f"{name}_buckets(text, timestamptz, timestamptz)" for name in NAMES)
SLACKED = "(timestamptz, timestamptz, interval)"
V2_FUNCTIONS = V1_FUNCTIONS + tuple(f"{name}_days{RANGE}" for name in NAMES) \
    + tuple(f"{name}_stats_between{SLACKED}" for name in NAMES) \
    + ("rollup_span(text, timestamptz, timestamptz, interval)", f"workflow_daily_between{SLACKED}")


def upgrade() -> None:
    settings = config.for_migration()
    a, zone = settings.analytics_schema, settings.timezone
    _drop_views()
    for function in V1_FUNCTIONS:
        op.execute(f"drop function {a}.{function}")
    run_owned_sql("rollup_hours__v1")
    run_owned_sql("rollup_buckets__v2")
    for function in V2_FUNCTIONS:
        grant_execute(function)  # the charts call them as the reader
    for name in NAMES:
        grant_select(f"{name}_rollup")  # read by the functions, which run as their caller
        grant_select(f"{name}_hours")
        op.execute(f"insert into {a}.{name}_hours select buckets.* from {a}.rollup_state as state "
                   f"cross join lateral {a}.{name}_buckets('hour', '-infinity', state.watermark) as buckets "
                   f"where state.rollup = '{name}' order by 1")
        op.execute(f"delete from {a}.{name}_rollup where period_start >= "
                   f"(select date_trunc('day', watermark, '{zone}') from {a}.rollup_state where rollup = '{name}')")
        op.execute(f"analyze {a}.{name}_hours")
    grant_select("rollup_state")
    for name in NAMES:
        create_view(f"{name}_stats", 2)
    create_view("workflow_daily", 4)
    create_view("agent_models", 2)


def downgrade() -> None:
    """Back to whole days and today's hours in <name>_rollup, with the watermark on the hour
    (the rows after it are read live again)."""
    settings = config.for_migration()
    a, zone = settings.analytics_schema, settings.timezone
    _drop_views()
    for name in NAMES:
        op.execute(f"update {a}.rollup_state set watermark = date_trunc('hour', watermark, '{zone}') "
                   f"where rollup = '{name}'")
        op.execute(f"insert into {a}.{name}_rollup select hours.* from {a}.rollup_state as state "
                   f"join {a}.{name}_hours as hours on hours.period_start >= date_trunc('day', state.watermark, '{zone}') "
                   f"and hours.period_start < state.watermark where state.rollup = '{name}' order by 1")
    for function in reversed(V2_FUNCTIONS):
        op.execute(f"drop function {a}.{function}")
    for name in NAMES:
        op.execute(f"drop table {a}.{name}_hours")
        revoke_select(f"{name}_rollup")
    revoke_select("rollup_state")
    run_owned_sql("rollup_buckets__v1")
    for function in V1_FUNCTIONS:
        grant_execute(function)
    for name in NAMES:
        create_view(f"{name}_stats", 1)
    create_view("workflow_daily", 3)
    create_view("agent_models", 2)


def _drop_views() -> None:
    drop_view("workflow_daily")  # reads workflow_stats
    drop_view("agent_models")  # reads agent_stats
    for name in NAMES:
        drop_view(f"{name}_stats")
