"""statement_stats v3: slow_queries shows a statement's text only where PostgreSQL's own parse
(pg_stat_statements' normalisation) left no literal in it, and the command's keywords elsewhere
(`ALTER ROLE (text hidden)`); carries_password() keeps its name and signature for bootstrap
(issue 31: v2's regular expression missed `alter/**/role ... E'...'` and a conninfo's password).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.warehouse.migration_ops import run_owned_sql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_owned_sql("statement_stats__v3")  # create or replace: the same columns, slow_queries keeps reading it


def downgrade() -> None:
    analytics = config.for_migration().analytics_schema
    run_owned_sql("statement_stats__v2")  # v2's carries_password() and statement_stats() back in place
    op.execute(f"drop function {analytics}.statement_text(text, integer, text[])")
    op.execute(f"drop function {analytics}.command_words(text, text[])")
    op.execute(f"drop function {analytics}.keeps_literal(text)")
