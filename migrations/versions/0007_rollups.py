"""Rollups: analytics.<name>_rollup tables filled by <name>_buckets() and read, with the live
rows after their watermark, through the <name>_stats views; agent_logs v3 (left joins, no CTEs:
flattened into the queries reading it); errors v2 (built on agent_logs, with brand columns);
workflow_daily v2 (from the rollup, days in SPARKLIO_TIMEZONE); and the small brand_names and
agent_models views the dashboards' filters list their options from.

The first build reads every source row once (1-2 minutes at 10 million agent_logs).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
from alembic import op

from sparklio_bi import config, rollups
from sparklio_bi.migration_ops import create_view, drop_view, replace_view, run_bundle_sql
from sparklio_bi.privileges import grant_execute

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATS = tuple(f"{rollup.name}_stats" for rollup in rollups.ROLLUPS)
BUCKETS = tuple(f"{rollup.name}_buckets(text, timestamptz, timestamptz)" for rollup in rollups.ROLLUPS)
TABLES = tuple(rollup.table for rollup in rollups.ROLLUPS) + ("agent_model_pairs", "rollup_state")


def upgrade() -> None:
    replace_view("agent_logs", 3)
    replace_view("errors", 2)
    run_bundle_sql("rollups__v1")
    run_bundle_sql("rollup_buckets__v1")
    for function in BUCKETS:
        grant_execute(function)  # the stats views call them as the reader, for the live rows
    for view in STATS + ("brand_names", "agent_models"):
        create_view(view, 1)
    replace_view("workflow_daily", 2)
    rollups.refresh(op.get_bind().connection, config.for_migration(), full=True)


def downgrade() -> None:
    schema = config.for_migration().analytics_schema
    replace_view("workflow_daily", 1)
    for view in reversed(STATS + ("brand_names", "agent_models")):
        drop_view(view)
    for function in BUCKETS:
        op.execute(f"drop function {schema}.{function}")
    for table in TABLES:
        op.execute(f"drop table {schema}.{table}")
    replace_view("errors", 1)
    replace_view("agent_logs", 2)
