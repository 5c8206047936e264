"""active_users v1: chart 6.1 (daily active users) reads the distinct (day, brand, user) of the
projects that the rollup refresh keeps (sql/owned/active_user_days__v1.sql), through
active_users_between(since, until) and its twin over every brand
(sql/owned/active_users_buckets__v1.sql), instead of counting distinct users over every project
on each query.

Built here from the projects in one snapshot, with rollup_state's row 'active_users' holding the
highest project id seen; every refresh from then on rewrites the days that changed and moves it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres.privileges import grant_execute, grant_select
from sparklio_bi.warehouse.migration_ops import create_view, drop_view, run_owned_sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLES = ("active_user_days", "active_user_days_all_brands")
FUNCTIONS = ("projects_after(bigint)",
             "active_users_span(timestamptz, timestamptz, interval, text)",
             "active_users_between(timestamptz, timestamptz, interval, text)",
             "active_users_all_brands_between(timestamptz, timestamptz, interval, text)")


def upgrade() -> None:
    settings = config.for_migration()
    a, s = settings.analytics_schema, settings.source_schema
    run_owned_sql("active_user_days__v1")
    run_owned_sql("active_users_buckets__v1")
    for table in TABLES:
        grant_select(table)  # read by the functions, which run as their caller
    for function in FUNCTIONS:
        grant_execute(function)
    op.execute(f"""
        with seen as materialized (select * from {a}.active_user_day_rows('-infinity', 'infinity')),
        per_brand as (insert into {a}.active_user_days select * from seen order by 1),
        all_brands as (insert into {a}.active_user_days_all_brands select distinct day, user_id from seen order by 1)
        insert into {a}.rollup_state (rollup, watermark, last_id, last_xmin, refreshed_at, snapshot)
        select 'active_users', now(), coalesce(max(id), 0), txid_snapshot_xmin(txid_current_snapshot()), now(),
               pg_current_snapshot()
        from {s}.projects""")  # one statement: one snapshot for the rows and the id
    for table in TABLES:
        op.execute(f"analyze {a}.{table}")
    create_view("active_users", 1)


def downgrade() -> None:
    a = config.for_migration().analytics_schema
    drop_view("active_users")
    for function in reversed(FUNCTIONS):
        op.execute(f"drop function {a}.{function}")
    op.execute(f"drop function {a}.active_user_day_rows(timestamptz, timestamptz)")
    op.execute(f"delete from {a}.rollup_state where rollup = 'active_users'")
    for table in reversed(TABLES):
        op.execute(f"drop table {a}.{table}")
