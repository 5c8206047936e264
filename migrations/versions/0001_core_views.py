"""Core entity views v1: workflows, agent_logs, router_logs, brands, projects, assets, users.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from sparklio_bi.warehouse.migration_ops import create_view, drop_view

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

VIEWS = ("workflows", "agent_logs", "router_logs", "brands", "projects", "assets", "users")


def upgrade() -> None:
    for view in VIEWS:
        create_view(view, 1)


def downgrade() -> None:
    for view in reversed(VIEWS):
        drop_view(view)
