"""system_metrics v2 and system_rates v1: the host samples of issue 32 (CPU, memory, swap, disk,
load, network) listed in system_metrics' header (its query unchanged), and the network counters'
increase per second between samples.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08
"""
from sparklio_bi.warehouse.migration_ops import create_view, drop_view, replace_view

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    replace_view("system_metrics", 2)
    create_view("system_rates", 1)


def downgrade() -> None:
    drop_view("system_rates")
    replace_view("system_metrics", 1)
