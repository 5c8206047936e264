"""statement_stats v2: statements whose text may carry a password (`alter role ... password`)
never reach slow_queries; carries_password() names them (bootstrap also removes them from
pg_stat_statements and replaces a reader password they exposed).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute
from sparklio_bi.warehouse.migration_ops import create_view, drop_view, run_owned_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_owned_sql("statement_stats__v2")  # create or replace: slow_queries keeps reading it


def downgrade() -> None:
    analytics = config.for_migration().analytics_schema
    drop_view("slow_queries")  # it reads the function; v1's file creates it anew
    op.execute(f"drop function {analytics}.statement_stats()")
    op.execute(f"drop function {analytics}.carries_password(text)")
    run_owned_sql("statement_stats__v1")
    grant_execute("statement_stats()")
    create_view("slow_queries", 2)
