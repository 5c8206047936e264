"""users v3: the project counts per user kept by the rollup refresh (sql/owned/
user_project_counts__v1.sql) plus the projects above the highest id it saw, read live, instead of a
GROUP BY over every project on each query (chart 6.2, projects per user).

Built here from the projects in one snapshot, with rollup_state's row
'user_projects' holding the highest project id counted; every refresh from then on rewrites the
rows that changed and moves that id.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""
from alembic import op

from sparklio_bi import config
from sparklio_bi.warehouse.migration_ops import replace_view, run_owned_sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    settings = config.for_migration()
    a, s = settings.analytics_schema, settings.source_schema
    run_owned_sql("user_project_counts__v1")
    op.execute(f"""
        with seen as (select id, user_id, created_at from {s}.projects),  -- one snapshot for both
        counted as (insert into {a}.user_project_counts
                    select user_id, count(*), max(created_at) from seen group by user_id)
        insert into {a}.rollup_state (rollup, watermark, last_id, last_xmin, refreshed_at, snapshot)
        select 'user_projects', now(), coalesce(max(id), 0), txid_snapshot_xmin(txid_current_snapshot()), now(),
               pg_current_snapshot()
        from seen""")
    op.execute(f"analyze {a}.user_project_counts")
    replace_view("users", 3)


def downgrade() -> None:
    a = config.for_migration().analytics_schema
    replace_view("users", 2)
    op.execute(f"delete from {a}.rollup_state where rollup = 'user_projects'")
    op.execute(f"drop table {a}.user_project_counts")
