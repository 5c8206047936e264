"""errors v1 (every failed execution, recovered or not) and workflow_daily v1 (zero-filled days).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from sparklio_bi.warehouse.migration_ops import create_view, drop_view

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_view("errors", 1)
    create_view("workflow_daily", 1)


def downgrade() -> None:
    drop_view("workflow_daily")
    drop_view("errors")
