"""Alembic environment of the analytics views: one transaction for the whole run, so a failed
migration leaves the database exactly as it was (PostgreSQL DDL is transactional)."""
from alembic import context
from sqlalchemy import text

from sparklio_bi import config
from sparklio_bi.postgres import database

settings = config.for_migration()  # what migrate.upgrade/downgrade passed down
url = context.config.attributes.get("url") or database.analytics_url(settings)


def run_migrations_online() -> None:
    connectable = context.config.attributes.get("connection")
    if connectable is None:
        connectable = database.engine(url).connect()
    with connectable as connection:
        context.configure(
            connection=connection,
            version_table_schema=settings.analytics_schema,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            connection.execute(text(f"create schema if not exists {settings.analytics_schema}"))
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=url, literal_binds=True, version_table_schema=settings.analytics_schema)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
