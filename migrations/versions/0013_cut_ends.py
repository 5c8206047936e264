"""Fewer rows read per range (sql/owned/rollup_buckets__v3.sql, rollup_months__v1.sql):
<name>_stats_between takes an end off a whole hour's (or day's) row when that reads fewer raw rows
than adding up to the next whole hour; the raw pieces are planned with random_page_cost 1.1; and
with whole_months => true (the charts that show totals, not a series by day) whole months come
from the new <name>_months tables. The answers are the same: a range starting at a midnight or
ending now reads a minute of raw rows instead of an hour, a quarter three month rows per key
instead of ninety day rows.

The months are added up from the days once (seconds at 10M rows).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute, grant_select
from sparklio_bi.warehouse.migration_ops import create_view, drop_view, run_owned_sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

NAMES = ("agent", "error", "router", "workflow", "asset")
RANGE = "(timestamptz, timestamptz)"
BUCKETS = tuple(f"{name}_buckets(text, timestamptz, timestamptz)" for name in NAMES) \
    + tuple(f"{name}_days{RANGE}" for name in NAMES)
V2_FUNCTIONS = BUCKETS + tuple(f"{name}_stats_between(timestamptz, timestamptz, interval)" for name in NAMES) \
    + ("rollup_span(text, timestamptz, timestamptz, interval)",
       "workflow_daily_between(timestamptz, timestamptz, interval)")
V3_FUNCTIONS = BUCKETS + tuple(f"{name}_month_totals{RANGE}" for name in NAMES) \
    + tuple(f"{name}_stats_between(timestamptz, timestamptz, interval, boolean)" for name in NAMES) \
    + ("rollup_span(text, timestamptz, timestamptz, interval, boolean)",
       "workflow_daily_between(timestamptz, timestamptz, interval)")


def upgrade() -> None:
    settings = config.for_migration()
    a, zone = settings.analytics_schema, settings.timezone
    _drop(V2_FUNCTIONS)
    run_owned_sql("rollup_months__v1")
    run_owned_sql("rollup_buckets__v3")
    for function in V3_FUNCTIONS:
        grant_execute(function)  # the charts call them as the reader
    for name in NAMES:
        grant_select(f"{name}_months")  # read by the functions, which run as their caller
        op.execute(f"insert into {a}.{name}_months select months.* from {a}.rollup_state as state "
                   f"cross join lateral {a}.{name}_month_totals('-infinity', "
                   f"date_trunc('month', date_trunc('day', state.watermark, '{zone}'), '{zone}')) as months "
                   f"where state.rollup = '{name}' order by 1")
        op.execute(f"analyze {a}.{name}_months")
    _create_views()


def downgrade() -> None:
    a = config.for_migration().analytics_schema
    _drop(V3_FUNCTIONS)
    for name in NAMES:
        op.execute(f"drop table {a}.{name}_months")
    run_owned_sql("rollup_buckets__v2")
    for function in V2_FUNCTIONS:
        grant_execute(function)
    _create_views()


def _drop(functions: tuple[str, ...]) -> None:
    """The views that call the buckets file's functions, then the functions (rollup_span's and
    the stats functions' arguments and columns differ between versions)."""
    a = config.for_migration().analytics_schema
    drop_view("workflow_daily")  # reads workflow_stats
    drop_view("agent_models")  # reads agent_stats
    for name in NAMES:
        drop_view(f"{name}_stats")
    for function in functions:
        op.execute(f"drop function {a}.{function}")


def _create_views() -> None:
    for name in NAMES:
        create_view(f"{name}_stats", 2)
    create_view("workflow_daily", 4)
    create_view("agent_models", 2)
