"""service_request_quarters and service_request_routes, kept by triggers on service_request_minutes, the
views api_request_stats v1 and api_routes v1, and histogram_quantile (issue 32): the API Performance
dashboard reads any time range's whole quarter hours from the quarters and its ends from the minutes.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.warehouse.migration_ops import create_view, drop_view, run_owned_sql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

VIEWS = ("api_request_stats", "api_routes")
TRIGGERS = ("service_minutes_added", "service_minutes_removed", "service_minutes_unchanged",
            "service_minutes_truncated")
FUNCTIONS = ("service_minutes_added()", "service_minutes_removed()", "service_minutes_unchanged()",
             "service_minutes_truncated()", "service_quarter(timestamptz)",
             "histogram_quantile(numeric, numeric[], numeric)")


def upgrade() -> None:
    run_owned_sql("histogram_quantile__v1")
    run_owned_sql("service_request_quarters__v1")
    for view in VIEWS:
        create_view(view, 1)


def downgrade() -> None:
    schema = config.for_migration().analytics_schema
    for view in reversed(VIEWS):
        drop_view(view)
    for trigger in TRIGGERS:
        op.execute(f"drop trigger {trigger} on {schema}.service_request_minutes")
    for function in FUNCTIONS:
        op.execute(f"drop function {schema}.{function}")
    op.execute(f"drop table {schema}.service_request_routes")
    op.execute(f"drop table {schema}.service_request_quarters")
