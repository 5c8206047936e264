"""projects v2 and users v2: the same columns without CTEs, so PostgreSQL flattens them and drops
the joins and the per-user project counts a chart does not use (daily active users, new signups).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
from sparklio_bi.warehouse.migration_ops import replace_view

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    replace_view("projects", 2)
    replace_view("users", 2)


def downgrade() -> None:
    replace_view("users", 1)
    replace_view("projects", 1)
