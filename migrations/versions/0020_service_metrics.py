"""service_request_minutes, service_metric_minutes and their retention (issue 32): the tables the
PostgreSQL sink of Sparklio's service (sparklio_instrument.sink) writes its per-minute aggregates
into, as sparklio_metrics_writer, a role that may only insert into them (and call
prune_service_metrics); api_requests v1 and service_metrics v1 add up its writers within the retention.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres import service_writer
from sparklio_bi.warehouse.migration_ops import create_view, drop_data_allowed, drop_view, run_owned_sql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

WRITER = "sparklio_metrics_writer"
TABLES = ("service_request_minutes", "service_metric_minutes")
PRUNE = "prune_service_metrics(integer)"
VIEWS = ("api_requests", "service_metrics")


def upgrade() -> None:
    run_owned_sql("service_request_minutes__v1")
    run_owned_sql("service_metric_minutes__v1")
    run_owned_sql("service_metrics_retention__v1")
    for view in VIEWS:
        create_view(view, 1)
    service_writer.grant_insert_only(WRITER, TABLES, PRUNE)


def downgrade() -> None:
    schema = config.for_migration().analytics_schema
    bind = op.get_bind()
    rows = sum(bind.exec_driver_sql(f"select count(*) from {schema}.{table}").scalar() for table in TABLES)
    if rows and not drop_data_allowed():
        raise RuntimeError(f"downgrading below 0020 drops {' and '.join(f'{schema}.{t}' for t in TABLES)} and their "
                           f"{rows} rows written by Sparklio's service: pass --drop-data (alembic: -x drop_data=true) "
                           "to do it anyway")
    service_writer.revoke_schema(WRITER)
    for view in reversed(VIEWS):
        drop_view(view)
    op.execute(f"drop function {schema}.{PRUNE}")
    op.execute(f"drop table {schema}.service_metrics_retention")
    for table in reversed(TABLES):
        op.execute(f"drop table {schema}.{table}")
