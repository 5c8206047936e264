"""Never take off a whole row what it does not hold; rows as fine as the chart's grain
(sql/owned/rollup_buckets__v4.sql).

- rollup_state.snapshot: what the last refresh saw (pg_current_snapshot of its transaction).
  rollup_span takes an end off a whole hour's (day's, month's) row only when every source row of
  the part taken off was visible to that refresh (`rows_unseen`): a row dated before the
  watermark but committed after the refresh (a long transaction, a backfill), or changed since
  (a status, a recovery), was taken off a row that never held it.
- <name>_stats_between(since, until, slack, coarsest text default 'day') replaces the
  whole_months boolean: 'month' (totals), 'day', 'hour' (a series by hour: day rows would put a
  day on its first hour) or 'exact' (every row at its own time: a series finer than an hour, a
  filter on period_start other than the range's ends). The datasets' SQL picks it from the query.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute
from sparklio_bi.warehouse.migration_ops import create_view, drop_view, run_owned_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

NAMES = ("agent", "error", "router", "workflow", "asset")
V3_ONLY = tuple(f"{name}_stats_between(timestamptz, timestamptz, interval, boolean)" for name in NAMES) \
    + ("rollup_span(text, timestamptz, timestamptz, interval, boolean)",)
V4_ONLY = tuple(f"{name}_stats_between(timestamptz, timestamptz, interval, text)" for name in NAMES) \
    + ("rollup_span(text, timestamptz, timestamptz, interval, text)",
       "rows_unseen(text, timestamptz, timestamptz)")


def upgrade() -> None:
    a = config.for_migration().analytics_schema
    op.execute(f"alter table {a}.rollup_state add column snapshot pg_snapshot")  # null until the next refresh
    _drop(V3_ONLY)
    run_owned_sql("rollup_buckets__v4")
    for function in V4_ONLY:
        grant_execute(function)  # rows_unseen runs as the owner: the reader may not read the source tables
    _create_views()


def downgrade() -> None:
    a = config.for_migration().analytics_schema
    _drop(V4_ONLY)
    run_owned_sql("rollup_buckets__v3")
    for function in V3_ONLY:
        grant_execute(function)
    op.execute(f"alter table {a}.rollup_state drop column snapshot")
    _create_views()


def _drop(functions: tuple[str, ...]) -> None:
    """The views that call the stats functions (their default arguments change), then the
    functions whose arguments differ between the versions."""
    a = config.for_migration().analytics_schema
    drop_view("workflow_daily")
    drop_view("agent_models")
    for name in NAMES:
        drop_view(f"{name}_stats")
    for function in functions:
        op.execute(f"drop function {a}.{function}")


def _create_views() -> None:
    for name in NAMES:
        create_view(f"{name}_stats", 2)
    create_view("workflow_daily", 4)
    create_view("agent_models", 2)
