"""agent_logs v2: adds project_id, brand_id and brand_name for the brand filter.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""
from sparklio_bi.warehouse.migration_ops import replace_view

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    replace_view("agent_logs", 2)


def downgrade() -> None:
    replace_view("agent_logs", 1)
