"""slow_queries v2: reads pg_stat_statements through statement_stats() (security definer), so
the read-only role sees every statement's text without pg_read_all_stats.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute
from sparklio_bi.warehouse.migration_ops import replace_view, run_owned_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_owned_sql("statement_stats__v1")
    grant_execute("statement_stats()")
    replace_view("slow_queries", 2)


def downgrade() -> None:
    replace_view("slow_queries", 1)
    op.execute(f"drop function {config.for_migration().analytics_schema}.statement_stats()")
