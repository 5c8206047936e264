"""Rollups: analytics.<name>_rollup tables filled by <name>_buckets() and read, with the live
rows after their watermark, through the <name>_stats views; agent_logs v3 (left joins, no CTEs:
flattened into the queries reading it); errors v2 (built on agent_logs, with brand columns);
workflow_daily v2 (from the rollup, days in SPARKLIO_TIMEZONE); and the small brand_names and
agent_models views the dashboards' filters list their options from.

The first build reads every source row once (1-2 minutes at 10 million agent_logs). It is
written out here, as the rollups of this version are built, so the revision never follows
today's refresh code (sparklio_bi.warehouse.rollups), which knows only the rollups of the head revision.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute
from sparklio_bi.warehouse.migration_ops import create_view, drop_view, replace_view, run_owned_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (rollup, the application table whose highest id its state records), as this revision has them
ROLLUPS = (("agent", "agent_logs"), ("error", "agent_logs"), ("router", "router_logs"),
           ("workflow", "workflows"), ("asset", "assets"))
STATS = tuple(f"{name}_stats" for name, _ in ROLLUPS)
BUCKETS = tuple(f"{name}_buckets(text, timestamptz, timestamptz)" for name, _ in ROLLUPS)
TABLES = tuple(f"{name}_rollup" for name, _ in ROLLUPS) + ("agent_model_pairs", "rollup_state")


def upgrade() -> None:
    replace_view("agent_logs", 3)
    replace_view("errors", 2)
    run_owned_sql("rollups__v1")
    run_owned_sql("rollup_buckets__v1")
    for function in BUCKETS:
        grant_execute(function)  # the stats views call them as the reader, for the live rows
    for view in STATS + ("brand_names", "agent_models"):
        create_view(view, 1)
    replace_view("workflow_daily", 2)
    build()


def build() -> None:
    """The rollups of this revision, full: whole days before today's midnight, whole hours of
    today up to this hour, in SPARKLIO_TIMEZONE; the watermark at this hour."""
    settings = config.for_migration()
    a, s = settings.analytics_schema, settings.source_schema
    bounds = (f"(select date_trunc('day', now(), '{settings.timezone}') as today, "
              f"date_trunc('hour', now(), '{settings.timezone}') as hour) as bounds")
    for name, source in ROLLUPS:
        op.execute(f"insert into {a}.{name}_rollup select buckets.* from {bounds} "
                   f"cross join lateral {a}.{name}_buckets('day', '-infinity', bounds.today) as buckets order by 1")
        op.execute(f"insert into {a}.{name}_rollup select buckets.* from {bounds} "
                   f"cross join lateral {a}.{name}_buckets('hour', bounds.today, bounds.hour) as buckets order by 1")
        op.execute(f"insert into {a}.rollup_state (rollup, watermark, last_id, last_xmin, refreshed_at) "
                   f"select '{name}', bounds.hour, (select coalesce(max(id), 0) from {s}.{source}), "
                   f"txid_snapshot_xmin(txid_current_snapshot()), now() from {bounds}")
        op.execute(f"analyze {a}.{name}_rollup")
    op.execute(f"insert into {a}.agent_model_pairs (agent_name, model) "
               f"select distinct agent_name, model from {a}.agent_stats on conflict do nothing")


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
