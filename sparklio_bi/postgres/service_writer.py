"""Least privilege for Sparklio's service: the role its PostgreSQL sink (sparklio_instrument.sink) writes as.

The role may INSERT into the bundle's per-minute tables and call the one function that deletes their
rows past the retention (never a minute of the last day): no SELECT, UPDATE or DELETE, nothing of the
views or the source tables. Migration 0020 creates it where the owner may create roles (as 0005 does
the reader) and grants it; elsewhere a DBA creates it and the owner grants it (`dba_sql`). Its
password is the service's to set (`alter role ... password`): the bundle never logs in as it.
"""
from __future__ import annotations

from sparklio_bi import config

STATEMENT_TIMEOUT = "5s"
IDLE_IN_TRANSACTION_TIMEOUT = "10s"


def dba_sql(role: str, schema: str, tables: tuple[str, ...], prune: str) -> str:
    """The SQL that sets the role up on a server where the bundle may not create roles: the first
    statement is the DBA's, the grants the owner's (or the DBA's)."""
    return (f"create role {role} login password '<password>' nosuperuser nocreatedb nocreaterole "
            f"noreplication nobypassrls; {_limits_sql(role)}; {'; '.join(_grants_sql(role, schema, tables, prune))}")


def _limits_sql(role: str) -> str:
    return (f"alter role {role} set statement_timeout = '{STATEMENT_TIMEOUT}'; "
            f"alter role {role} set idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'")


def _grants_sql(role: str, schema: str, tables: tuple[str, ...], prune: str) -> list[str]:
    return [f"grant usage on schema {schema} to {role}",
            *(f"grant insert on {schema}.{table} to {role}" for table in tables),
            f"grant execute on function {schema}.{prune} to {role}"]


# --- in migrations (Alembic `op`) ------------------------------------------------------------

def grant_insert_only(role: str, tables: tuple[str, ...], prune: str) -> None:
    """Create `role` unless it exists (this owner permitting) and grant it INSERT on `tables` and
    EXECUTE on `prune`, which PUBLIC loses. Where the role is missing and may not be created, the
    tables wait for the DBA's SQL: a service without the sink needs none of it."""
    from alembic import op

    schema = config.for_migration().analytics_schema
    bind = op.get_bind()
    op.execute(f"revoke execute on function {schema}.{prune} from public")
    if not _role_exists(bind, role):
        may_create = bind.exec_driver_sql(
            "select rolsuper or rolcreaterole from pg_roles where rolname = current_user").scalar()
        if not may_create:
            return
        op.execute(f"create role {role} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls")
        for statement in _limits_sql(role).split("; "):
            op.execute(statement)
    for statement in _grants_sql(role, schema, tables, prune):
        op.execute(statement)


def revoke_schema(role: str) -> None:
    """Take the schema back from `role` (a downgrade; its tables and function go with their drop).
    The role itself stays: it is cluster-wide and may be a DBA's."""
    from alembic import op

    if _role_exists(op.get_bind(), role):
        op.execute(f"revoke usage on schema {config.for_migration().analytics_schema} from {role}")


def _role_exists(bind, role: str) -> bool:
    return bind.exec_driver_sql("select 1 from pg_roles where rolname = %s", (role,)).first() is not None
