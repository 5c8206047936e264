"""System resources: the bundle's system_samples table and the views dashboard 5 reads.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.warehouse.migration_ops import create_view, drop_data_allowed, drop_view, run_owned_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VIEWS = ("system_metrics", "database_size", "table_sizes", "slow_queries")


def upgrade() -> None:
    # slow_queries reads pg_stat_statements; the embedded server preloads it. Elsewhere the
    # extension needs shared_preload_libraries and a role allowed to create it.
    op.execute("create extension if not exists pg_stat_statements")
    run_owned_sql("system_samples__v1")
    for view in VIEWS:
        create_view(view, 1)


def downgrade() -> None:
    table = f"{config.for_migration().analytics_schema}.system_samples"
    samples = op.get_bind().exec_driver_sql(f"select count(*) from {table}").scalar()
    if samples and not drop_data_allowed():
        raise RuntimeError(f"downgrading below 0003 drops {table} and its {samples} collected samples: "
                           "pass --drop-data (alembic: -x drop_data=true) to do it anyway")
    for view in reversed(VIEWS):
        drop_view(view)
    op.execute(f"drop table {table}")
