"""agent_latency_recent v1, asset_reviews v1 and rollup_lag v1: what the Prometheus exporter (`sparklio-bi metrics
serve`) reads besides the rollup-backed *_stats views, kept as versioned views like every KPI so
the metrics and the charts cannot drift apart.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""
from sparklio_bi.warehouse.migration_ops import create_view, drop_view

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_view("agent_latency_recent", 1)
    create_view("asset_reviews", 1)
    create_view("rollup_lag", 1)


def downgrade() -> None:
    drop_view("rollup_lag")
    drop_view("asset_reviews")
    drop_view("agent_latency_recent")
