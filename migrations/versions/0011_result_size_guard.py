"""refuse_large_result(): what Superset's queries call (through superset_config.py's
SQL_QUERY_MUTATOR) once a result passes SPARKLIO_SQL_MAX_RESULT_BYTES, so a query's bytes are
bounded in PostgreSQL before they reach a web worker; the reader may call it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute
from sparklio_bi.warehouse.migration_ops import run_owned_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_owned_sql("result_guard__v1")
    grant_execute("refuse_large_result(bigint)")


def downgrade() -> None:
    op.execute(f"drop function {config.for_migration().analytics_schema}.refuse_large_result(bigint)")
