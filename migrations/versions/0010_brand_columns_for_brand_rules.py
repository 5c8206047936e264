"""workflow_daily v3 (one row per day and brand, zero-filled for every brand) and agent_models v2
(one row per brand, agent and model), so a brand rule limits chart 1.1 and the Agent and Model
filters like every other dataset with a brand_id: a brand-limited viewer reads only those.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
from sparklio_bi.warehouse.migration_ops import replace_view

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    replace_view("workflow_daily", 3)
    replace_view("agent_models", 2)


def downgrade() -> None:
    replace_view("agent_models", 1)
    replace_view("workflow_daily", 2)
