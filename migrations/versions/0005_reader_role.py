"""The read-only role Superset connects as: created here, granted every view (and, through
`create_view`, every view version created after it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from sparklio_bi.postgres.privileges import create_reader_role, grant_existing_views, revoke_reader

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_reader_role()
    grant_existing_views()


def downgrade() -> None:
    revoke_reader()
