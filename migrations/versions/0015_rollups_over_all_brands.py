"""The rollups with brand columns added up over every brand (sql/owned/rollup_all_brands__v1.sql,
rollup_all_brands_buckets__v1.sql): <name>_hours_all_brands, <name>_rollup_all_brands and
<name>_months_all_brands for agent, error, workflow and asset, and the functions the charts call
instead of <name>_stats_between and workflow_daily_between when their query names no brand
column (Superset's SQL mutator): a few rows a period instead of one per brand.

Built here from the rows they add up, at the rollups' current watermark; every refresh from then
on writes both in one transaction.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute, grant_select
from sparklio_bi.warehouse.migration_ops import run_owned_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# (rollup, its dimensions other than the brand, its sums), as this revision has them
ROLLUPS = (
    ("agent", ("agent_name", "model"), ("executions", "successes", "latency_ms_sum")),
    ("error", ("agent_name", "model", "error_type"), ("failures", "still_failing", "recovered", "recovery_seconds_sum")),
    ("workflow", ("status",), ("runs", "durations", "duration_seconds_sum")),
    ("asset", ("asset_type",), ("assets", "reviewed", "approved", "scored", "review_score_sum")),
)
GRAINS = ("hours", "rollup", "months")
FUNCTIONS = tuple(f"{name}_buckets_all_brands(text, timestamptz, timestamptz)" for name, _, _ in ROLLUPS) \
    + tuple(f"{name}_stats_all_brands_between(timestamptz, timestamptz, interval, text)" for name, _, _ in ROLLUPS) \
    + ("workflow_daily_all_brands_between(timestamptz, timestamptz, interval)",)


def upgrade() -> None:
    a = config.for_migration().analytics_schema
    run_owned_sql("rollup_all_brands__v1")
    run_owned_sql("rollup_all_brands_buckets__v1")
    for function in FUNCTIONS:
        grant_execute(function)  # the charts call them as the reader
    for name, dims, sums in ROLLUPS:
        keys = ", ".join(dims)
        for grain in GRAINS:
            table = f"{name}_{grain}_all_brands"
            grant_select(table)  # read by the functions, which run as their caller
            op.execute(f"insert into {a}.{table} select period_start, null, null, {keys}, "
                       f"{', '.join(f'sum({column})' for column in sums)} from {a}.{name}_{grain} "
                       f"group by period_start, {keys} order by 1")
            op.execute(f"analyze {a}.{table}")


def downgrade() -> None:
    a = config.for_migration().analytics_schema
    for function in reversed(FUNCTIONS):
        op.execute(f"drop function {a}.{function}")
    for name, _, _ in ROLLUPS:
        for grain in GRAINS:
            op.execute(f"drop table {a}.{name}_{grain}_all_brands")
