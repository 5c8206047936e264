"""Least privilege in PostgreSQL: the read-only role Superset connects as.

The migrations' role (the owner) creates and owns the analytics views; Superset holds only
`reader_role`: USAGE on the analytics schema and SELECT on its views, nothing in the source
schema (the views read it with their owner's rights), read-only transactions and a
statement timeout set on the role itself, so PostgreSQL enforces them whatever a client asks.

The role and its grants are created by migrations (0005, then `create_view` on every view
version); its password and limits are set by `ensure_login` at bootstrap, from the environment.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg2
from psycopg2 import sql
from sqlalchemy.engine import make_url

from sparklio_bi import config, datadir
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database, pooler

IDLE_IN_TRANSACTION_TIMEOUT = "60s"
# Functions any role may call by default that a reader could misuse (change its own limits,
# write large objects after `set transaction read write`); taken from PUBLIC where the bundle
# owns the database. The application's database keeps them: its own code may need them.
EMBEDDED_REVOKED_FUNCTIONS = ("set_config(text, text, boolean)", "lo_create(oid)", "lo_creat(integer)",
                              "lo_from_bytea(oid, bytea)")
# Functions that run a query given as text (or read a relation named by a string) as their
# caller: through them a chart's custom SQL column reads any view whole, past the brand rule,
# which is a WHERE clause Superset adds. Found in the catalog by calling every function that takes
# text with a query that reports it ran (tests/test_sql_paths.py); the XML ones need libxml.
STRING_RUNNING_FUNCTIONS = frozenset({
    "ts_stat", "ts_rewrite", "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
    "cursor_to_xmlschema", "table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema", "schema_to_xml",
    "schema_to_xmlschema", "schema_to_xml_and_xmlschema", "database_to_xml", "database_to_xmlschema",
    "database_to_xml_and_xmlschema", "dblink", "dblink_exec", "dblink_open", "dblink_send_query",
})
# Every Superset user shares the reader role, and backends of one role may cancel, terminate and
# watch each other: these act on, or show, other sessions.
SESSION_FUNCTIONS = frozenset({
    "pg_cancel_backend", "pg_terminate_backend", "pg_stat_get_activity", "pg_stat_get_backend_activity",
    "pg_stat_get_backend_idset", "pg_stat_get_backend_pid", "pg_stat_get_backend_userid",
    "pg_stat_get_backend_activity_start", "pg_stat_get_backend_xact_start", "pg_stat_get_backend_client_addr",
    "pg_blocking_pids", "pg_safe_snapshot_blocking_pids", "pg_log_backend_memory_contexts",
})
# The catalog views over them (pg_stat_activity shows every session of the role, queries included)
SESSION_VIEWS = ("pg_stat_activity",)


class PrivilegeError(ExpectedError):
    """The reader role is missing, or the bundle may not set it up (the message says what a
    DBA must run)."""


def dba_grants(settings: config.Settings, database_name: str = "<database>") -> str:
    """The one-time SQL a DBA runs on a server where the bundle's role may not create roles."""
    role = settings.reader_role
    return (f"create role {role} login password '<password>' nosuperuser nocreatedb nocreaterole; "
            f"alter role {role} set default_transaction_read_only = on; "
            f"alter role {role} set statement_timeout = '{settings.reader_statement_timeout}'; "
            f"alter role {role} set idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}'; "
            f"alter role {role} in database {database_name} set timezone = '{settings.timezone}'; "
            f"grant connect on database {database_name} to {role}")


def dba_revokes() -> str:
    """The SQL a DBA runs, in the analytics database, to take the string-running and session
    functions from PUBLIC (the reader role holds no grant of its own): PostgreSQL's own catalog
    gives their signatures, so it is one DO block whatever the server's version."""
    names = ", ".join(f"'{name}'" for name in sorted(STRING_RUNNING_FUNCTIONS | SESSION_FUNCTIONS))
    views = ", ".join(f"pg_catalog.{view}" for view in SESSION_VIEWS)
    return ("do $$ declare f regprocedure; begin for f in select oid from pg_proc where proname in "
            f"({names}) loop execute format('revoke execute on function %s from public', f); end loop; end $$; "
            f"revoke select on {views} from public")


def risky_functions(url: str) -> str | None:
    """None when the role of `url` may call none of the string-running and session functions nor
    read their views; else one line naming them and the DBA's SQL that takes them away."""
    with database.connect(url) as conn, conn.cursor() as cur:
        risky = granted_risky_functions(cur)
    if not risky:
        return None
    return (f"the read-only role may still call {', '.join(risky[:3])}{' and more' if len(risky) > 3 else ''}: "
            f"ask a DBA to run, in the analytics database: {dba_revokes()}")


def granted_risky_functions(cur) -> list[str]:
    """The string-running and session functions, and their views, the connected role may still use."""
    cur.execute("select p.oid::regprocedure::text from pg_proc p where p.proname = any(%s) "
                "and has_function_privilege(p.oid, 'execute') order by 1",
                (sorted(STRING_RUNNING_FUNCTIONS | SESSION_FUNCTIONS),))
    found = [row[0] for row in cur.fetchall()]
    for view in SESSION_VIEWS:
        cur.execute("select has_table_privilege(%s, 'select')", (f"pg_catalog.{view}",))
        found += [view] if cur.fetchone()[0] else []
    return found


# --- in migrations (Alembic `op`) ------------------------------------------------------------

def create_reader_role() -> None:
    """Create the reader role unless it exists (a DBA may have made it); grant it the schema."""
    from alembic import op

    settings = config.for_migration()
    bind = op.get_bind()
    if not _role_exists(bind, settings.reader_role):
        may_create = bind.exec_driver_sql(
            "select rolsuper or rolcreaterole from pg_roles where rolname = current_user").scalar()
        if not may_create:
            raise PrivilegeError(f"role {settings.reader_role} does not exist and this role may not create "
                                 f"it: ask a DBA to run: {dba_grants(settings)}")
        op.execute(f"create role {settings.reader_role} login nosuperuser nocreatedb nocreaterole "
                   "noreplication nobypassrls")
    op.execute(f"grant usage on schema {settings.analytics_schema} to {settings.reader_role}")
    op.execute(f"revoke create on schema {settings.analytics_schema} from public")


def grant_select(relation: str) -> None:
    """Let the reader role read one view of the analytics schema (when the role exists)."""
    from alembic import op

    settings = config.for_migration()
    if _role_exists(op.get_bind(), settings.reader_role):
        op.execute(grant_select_sql(settings, relation))


def revoke_select(relation: str) -> None:
    """Take back what grant_select gave (a downgrade)."""
    from alembic import op

    settings = config.for_migration()
    if _role_exists(op.get_bind(), settings.reader_role):
        op.execute(f"revoke select on {settings.analytics_schema}.{relation} from {settings.reader_role}")


def grant_select_sql(settings: config.Settings, relation: str) -> str:
    return f"grant select on {settings.analytics_schema}.{relation} to {settings.reader_role}"


def grant_existing_views() -> None:
    """Grant the reader role every view the analytics schema holds now."""
    from alembic import op

    schema = config.for_migration().analytics_schema
    found = op.get_bind().exec_driver_sql("select viewname from pg_views where schemaname = %s order by 1",
                                          (schema,)).scalars()
    for view in list(found):
        grant_select(view)


def grant_execute(function: str) -> None:
    """Let the reader role call one function of the analytics schema, and nobody else."""
    from alembic import op

    settings = config.for_migration()
    op.execute(f"revoke execute on function {settings.analytics_schema}.{function} from public")
    if _role_exists(op.get_bind(), settings.reader_role):
        op.execute(f"grant execute on function {settings.analytics_schema}.{function} to {settings.reader_role}")


def revoke_reader() -> None:
    """Take every privilege of the reader role on the analytics schema (the role itself stays:
    it is cluster-wide and may be a DBA's)."""
    from alembic import op

    settings = config.for_migration()
    if _role_exists(op.get_bind(), settings.reader_role):
        schema, role = settings.analytics_schema, settings.reader_role
        op.execute(f"revoke select on all tables in schema {schema} from {role}")
        op.execute(f"revoke execute on all functions in schema {schema} from {role}")
        op.execute(f"revoke usage on schema {schema} from {role}")


def _role_exists(bind, role: str) -> bool:
    return bind.exec_driver_sql("select 1 from pg_roles where rolname = %s", (role,)).first() is not None


# --- at bootstrap --------------------------------------------------------------------------

def password_file(settings: config.Settings) -> Path:
    return settings.data_dir / datadir.READER_PASSWORD


def reader_password(settings: config.Settings) -> str:
    """SPARKLIO_READER_PASSWORD, else one generated once and kept 0600 in the data dir."""
    if settings.reader_password:
        return settings.reader_password
    return datadir.kept_secret(password_file(settings), lambda: datadir.new_secret(24))[0]


def reader_url(owner_url: str, settings: config.Settings) -> str:
    """The owner's URL with the reader role and its password: what Superset connects with."""
    url = make_url(owner_url).set(username=settings.reader_role, password=reader_password(settings))
    return url.render_as_string(hide_password=False)


def superset_url(owner_url: str, settings: config.Settings) -> str:
    """Where Superset's analytics connection goes, as the reader role: SPARKLIO_READER_URL (a
    standby, a pooler), else the embedded PgBouncer when serve runs it, else the owner's server."""
    target = make_url(settings.reader_target_url or owner_url)
    if pooler.enabled(settings):
        target = target.set(host="127.0.0.1", port=settings.pooler_port)
    target = target.set(username=settings.reader_role, password=reader_password(settings))
    return target.render_as_string(hide_password=False)


def server_url(owner_url: str, settings: config.Settings) -> str:
    """Where Superset's server-health database goes (dashboard 5: sizes and statement statistics
    of the server it reads): the primary, as the reader role. With SPARKLIO_READER_URL at a
    standby the analytics connection reads the standby, whose files and statistics are its own,
    so this one goes to the owner's server; otherwise it is the analytics connection's."""
    if settings.reader_target_url:
        return reader_url(owner_url, settings)
    return superset_url(owner_url, settings)


def ensure_login(owner_url: str, settings: config.Settings, say: Callable[[str], None] = lambda line: None) -> str:
    """Give the reader role its password and limits (read-only, statement and idle timeouts) and,
    on the bundle's own embedded server, take from PUBLIC what a reader could misuse; returns
    the reader's URL. Where the owner may not alter the role, checks a DBA did.

    The password never travels as text in a statement (pg_stat_statements, and the PostgreSQL
    log on an error, keep a statement's text): it is set as a SCRAM verifier computed here, and
    only when the role does not already accept it. Statements of earlier versions that carried
    it in clear are removed from the statistics, and a generated password they exposed is
    replaced; `say` reports both."""
    role = sql.Identifier(settings.reader_role)
    try:
        with database.connect(owner_url) as conn, conn.cursor() as cur:
            exposed = _statements_with_passwords(cur, settings)
            if any(reader_password(settings) in text for _, _, _, text in exposed):
                _rotate_exposed_password(settings, say)  # before they are forgotten: a refusal is repeated
            _forget(cur, exposed, say)
            if not _accepts(reader_url(owner_url, settings)):
                _set_password(cur, settings)
            for name, value in (("default_transaction_read_only", "on"),
                                ("statement_timeout", settings.reader_statement_timeout),
                                ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT)):
                cur.execute(sql.SQL("alter role {} set {} = %s").format(role, sql.Identifier(name)), (value,))
            # Superset's time filters are local timestamps and its day grain date_trunc('day', ...):
            # both follow the session's zone, which must be the reporting one (in this database only)
            cur.execute("select current_database()")
            database_name = sql.Identifier(cur.fetchone()[0])
            cur.execute(sql.SQL("alter role {} in database {} set timezone = %s").format(role, database_name),
                        (settings.timezone,))
            if settings.embedded:
                _harden_embedded(cur, database_name)
    except psycopg2.errors.UndefinedObject:
        raise PrivilegeError(f"role {settings.reader_role} does not exist: run `sparklio-bi db upgrade`") from None
    except psycopg2.errors.InsufficientPrivilege:
        _check_dba_setup(reader_url(owner_url, settings), settings)
    return reader_url(owner_url, settings)


def _set_password(cur, settings: config.Settings) -> None:
    """ALTER ROLE with a SCRAM verifier made client-side (as psql's \\password does), kept out of
    pg_stat_statements where this role may say so (a superuser: the embedded server)."""
    verifier = psycopg2.extensions.encrypt_password(reader_password(settings), settings.reader_role, cur.connection,
                                                    "scram-sha-256")
    cur.execute("select rolsuper from pg_roles where rolname = current_user")
    if cur.fetchone()[0] and _has_statement_stats(cur):
        cur.execute("set local pg_stat_statements.track_utility = off")
    cur.execute(sql.SQL("alter role {} with login password %s").format(sql.Identifier(settings.reader_role)),
                (verifier,))


def _accepts(url: str) -> bool:
    """Whether the reader role logs in with this URL's password (then it is not set again)."""
    try:
        with database.connect(url):
            return True
    except database.DatabaseError:
        return False


def _has_statement_stats(cur) -> bool:
    cur.execute("select 1 from pg_extension where extname = 'pg_stat_statements'")
    return cur.fetchone() is not None


def _statements_with_passwords(cur, settings: config.Settings) -> list[tuple]:
    """(userid, dbid, queryid, text) of the statements pg_stat_statements kept whose text may
    carry a password (what bootstrap ran before SCRAM verifiers), by the rule slow_queries
    hides them by (carries_password(), migration 0009)."""
    if not _has_statement_stats(cur):
        return []
    cur.execute(f"select userid, dbid, queryid, query from pg_stat_statements "
                f"where {settings.analytics_schema}.carries_password(query)")
    return cur.fetchall()


def _forget(cur, statements: list[tuple], say: Callable[[str], None]) -> None:
    """Remove these statements from pg_stat_statements; where this role may not reset
    statistics, say what a DBA runs (slow_queries hides them either way)."""
    if not statements:
        return
    cur.execute("savepoint forget")
    try:
        for userid, dbid, queryid, _ in statements:
            cur.execute("select pg_stat_statements_reset(%s, %s, %s)", (userid, dbid, queryid))
    except psycopg2.errors.InsufficientPrivilege:
        cur.execute("rollback to savepoint forget")
        say(f"    WARNING: pg_stat_statements holds {len(statements)} statement(s) that may carry a password and "
            "this role may not remove them: ask a DBA to run `select pg_stat_statements_reset()` "
            "(slow_queries never shows them)")
        return
    say(f"    removed {len(statements)} statement(s) whose text may carry a password from pg_stat_statements")


def _rotate_exposed_password(settings: config.Settings, say: Callable[[str], None]) -> None:
    """An earlier install put the reader's password in the statistics every viewer could read:
    a generated one is replaced; one from the environment must be changed by its owner."""
    if settings.reader_password:
        raise PrivilegeError("SPARKLIO_READER_PASSWORD was readable in pg_stat_statements (an earlier version "
                             "set it in clear): set a new one and run bootstrap again")
    password_file(settings).unlink()
    reader_password(settings)
    say(f"    the read-only role's password had been exposed: replaced ({password_file(settings)})")


def _harden_embedded(cur, database_name: sql.Identifier) -> None:
    """The embedded server is the bundle's own: PUBLIC loses temporary tables, set_config and
    creating large objects in the analytics database, and CONNECT to Superset's metadata one."""
    cur.execute(sql.SQL("revoke temporary on database {} from public").format(database_name))
    for function in EMBEDDED_REVOKED_FUNCTIONS:
        cur.execute(f"revoke execute on function pg_catalog.{function} from public")
    cur.execute(dba_revokes())
    cur.execute("select 1 from pg_database where datname = %s", (config.SUPERSET_DATABASE,))
    if cur.fetchone():
        cur.execute(sql.SQL("revoke connect on database {} from public").format(sql.Identifier(config.SUPERSET_DATABASE)))


def _check_dba_setup(url: str, settings: config.Settings) -> None:
    missing = missing_limits(url, settings)
    if missing:
        raise PrivilegeError(f"role {settings.reader_role} is not set up ({'; '.join(missing)}) and this role "
                             f"may not alter it: ask a DBA to run: {dba_grants(settings)}")


def missing_limits(url: str, settings: config.Settings) -> list[str]:
    """What the reader role lacks of its limits, as seen when logged in as it (empty: all set)."""
    try:
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute("select current_setting('default_transaction_read_only'), "
                        "current_setting('statement_timeout'), rolsuper, current_setting('TimeZone') "
                        "from pg_roles where rolname = current_user")
            read_only, timeout, superuser, zone = cur.fetchone()
            cur.execute("select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                        "where n.nspname = %s and c.relkind = 'v' and "
                        "not (has_schema_privilege(n.oid, 'usage') and has_table_privilege(c.oid, 'select')) "
                        "order by 1", (settings.analytics_schema,))
            unreadable = [row[0] for row in cur.fetchall()]
    except database.DatabaseError as exc:
        return [str(exc)]
    missing = [f"no SELECT on {settings.analytics_schema}.{view}" for view in unreadable]
    if superuser:
        missing.append("it is a superuser")
    if read_only != "on":
        missing.append("default_transaction_read_only is off")
    if timeout in ("0", ""):
        missing.append("no statement_timeout")
    if zone != settings.timezone:
        missing.append(f"its time zone is {zone}, not SPARKLIO_TIMEZONE {settings.timezone}")
    return missing
