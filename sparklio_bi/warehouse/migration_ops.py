"""What migrations call: create, replace and drop one pinned view version (Alembic `op`)."""
from __future__ import annotations

from alembic import op

from sparklio_bi import config
from sparklio_bi.postgres import privileges
from sparklio_bi.warehouse import views


def create_view(view: str, version: int) -> None:
    """Create `view` from its file `sql/views/<view>__v<version>.sql`; the reader role may read it."""
    op.execute(views.create_view_sql(view, version, config.for_migration()))
    privileges.grant_select(view)


def replace_view(view: str, version: int) -> None:
    """Swap a view to another version; drop + create, since a version may drop or retype columns."""
    op.execute(views.drop_view_sql(view, config.for_migration()))
    create_view(view, version)


def drop_view(view: str) -> None:
    op.execute(views.drop_view_sql(view, config.for_migration()))


def run_owned_sql(name: str) -> None:
    """Run a bundle-owned DDL file from sql/owned/ (tables the bundle itself owns)."""
    op.execute(views.render(views.OWNED_DIR / f"{name}.sql", config.for_migration()))


def drop_data_allowed() -> bool:
    """Whether this run may destroy collected data: `db downgrade --drop-data`, or alembic's
    `-x drop_data=true`."""
    from alembic import context

    return bool(context.config.attributes.get("drop_data")) or \
        context.get_x_argument(as_dictionary=True).get("drop_data", "").lower() == "true"
