"""Which functions a query sent through Superset may call, decided on PostgreSQL's own parse.

Superset checks the SQL of a chart query, not a string handed to a function inside it:
`ts_stat('select ... from analytics.users')` runs any query as the reader role, past the brand
rule (a WHERE clause Superset adds) and past the datasets a user may read. So every query
Superset sends goes through one of two checks, on the tree PostgreSQL's parser builds (pglast is
libpg_query: the server's grammar, identifiers folded as the server folds them), before it runs:

- a chart query (chart data, explore, filter values, samples, alerts: anything but SQL Lab) is
  one SELECT whose every function is on CHART_FUNCTIONS, the pure aggregates, arithmetic, text
  and date functions a chart needs, or is one of the bundle's range functions the datasets read
  (`analytics.<view>_between`); anything else is refused;
- a SQL Lab query (analysts, who read every view whole) may call any function but those that run
  a query string, act on other sessions, or read or change settings (REFUSED_FUNCTIONS), and may
  not read the catalog views of other sessions (REFUSED_RELATIONS).

The reader role itself may not execute the string-running and session functions where the bundle
owns the server (postgres/privileges.py): the check and the privilege each stop them alone.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator

from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres.privileges import SESSION_FUNCTIONS, STRING_RUNNING_FUNCTIONS

# Functions that read or change the server's or the session's settings, or tell what the server
# is (Superset's own DISALLOWED_SQL_FUNCTIONS, kept for SQL Lab too, and these)
SETTINGS_FUNCTIONS = frozenset({
    "current_setting", "set_config", "pg_show_all_settings", "pg_settings_get_flags", "version",
    "current_database", "current_schema", "current_schemas", "current_user", "session_user", "current_role", "user",
    "current_catalog",
    "inet_client_addr", "inet_client_port", "inet_server_addr", "inet_server_port", "pg_backend_pid",
    "pg_postmaster_start_time", "pg_conf_load_time", "pg_reload_conf", "pg_rotate_logfile",
    "pg_current_logfile", "pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_dir", "pg_ls_logdir",
    "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "lo_import", "lo_export", "lo_create", "lo_creat",
    "lo_unlink", "lo_open", "lo_put", "lo_from_bytea", "lo_get", "lowrite", "loread", "dblink", "dblink_exec",
    "dblink_connect", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_try_advisory_lock", "pg_notify",
    "pg_sleep", "pg_sleep_for", "pg_sleep_until", "txid_current", "pg_current_xact_id", "pg_export_snapshot",
    "pg_stat_reset", "pg_stat_statements_reset", "has_function_privilege", "pg_get_userbyid",
})
REFUSED_FUNCTIONS = STRING_RUNNING_FUNCTIONS | SESSION_FUNCTIONS | SETTINGS_FUNCTIONS
# Catalog views that show other sessions, their statements and settings (slow_queries is the
# bundle's own view of statements, with texts that may carry a password left out)
REFUSED_RELATIONS = frozenset({"pg_stat_activity", "pg_settings", "pg_roles", "pg_shadow", "pg_authid", "pg_user",
                               "pg_config", "pg_stat_replication", "pg_stat_wal_receiver", "pg_file_settings",
                               "pg_stat_statements",
                               "pg_stat_statements_info", "pg_locks", "pg_prepared_xacts", "pg_stat_ssl",
                               "pg_stat_gssapi", "pg_hba_file_rules", "pg_ident_file_mappings",
                               "pg_backend_memory_contexts", "pg_stat_progress_vacuum"})

# What a chart may call: pure functions of its own row's or group's values. Nothing here reads a
# relation, runs a string, sleeps, or looks outside the query.
CHART_FUNCTIONS = frozenset({
    # aggregates and window functions
    "count", "sum", "avg", "min", "max", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
    "percentile_cont", "percentile_disc", "mode", "median", "bool_and", "bool_or", "every", "corr", "covar_pop",
    "covar_samp", "regr_slope", "regr_intercept", "regr_r2", "regr_count", "string_agg", "array_agg", "any_value",
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
    "last_value", "nth_value",
    # numbers
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sqrt", "cbrt", "power", "pow", "exp", "ln", "log", "log10",
    "mod", "sign", "div", "width_bucket", "greatest", "least", "nullif", "coalesce", "scale", "pi", "degrees",
    "radians", "to_number", "numeric", "float8", "float4", "int2", "int4", "int8",
    # text
    "lower", "upper", "initcap", "length", "char_length", "character_length", "octet_length", "substring", "substr",
    "left", "right", "trim", "btrim", "ltrim", "rtrim", "lpad", "rpad", "concat", "concat_ws", "replace",
    "split_part", "position", "strpos", "starts_with", "reverse", "translate", "regexp_replace", "regexp_match",
    "regexp_like", "regexp_substr", "regexp_count", "regexp_instr", "to_char", "format", "md5", "text", "overlay",
    # dates and times (pg_catalog.extract, timezone are how EXTRACT(...) and AT TIME ZONE parse)
    "date_trunc", "date_part", "extract", "date_bin", "age", "now", "to_timestamp", "to_date", "make_date",
    "make_time", "make_timestamp", "make_timestamptz", "make_interval", "justify_days", "justify_hours",
    "justify_interval", "timezone", "isfinite", "statement_timestamp", "transaction_timestamp", "clock_timestamp",
    "date", "timestamp", "timestamptz", "interval",
    # arrays, as a chart's label may use them
    "array_length", "cardinality", "array_to_string", "array_position",
})
# CURRENT_DATE and the like parse as SQLValueFunction: these are times, the rest say who is asking
CHART_VALUE_FUNCTIONS = frozenset({"current_date", "current_time", "current_timestamp", "localtime",
                                   "localtimestamp"})
CATALOG = "pg_catalog"


_IN_SQL_LAB = contextvars.ContextVar("sparklio_in_sql_lab", default=False)


@contextlib.contextmanager
def sql_lab() -> Iterator[None]:
    """Inside, the queries are SQL Lab's (patches.mark_sql_lab wraps SQL Lab's execution in it)."""
    token = _IN_SQL_LAB.set(True)
    try:
        yield
    finally:
        _IN_SQL_LAB.reset(token)


def in_sql_lab() -> bool:
    return _IN_SQL_LAB.get()


class RefusedQuery(ExpectedError):
    """A query that calls a function or reads a relation it may not; the message says which."""


@functools.cache
def bundle_functions(schema: str) -> frozenset[str]:
    """`<schema>.<view>_between` and `<schema>.<view>_all_brands_between`: the range functions the
    datasets read (assets.layout.RANGED_VIEWS), all the bundle's own functions a chart may call."""
    from sparklio_bi.superset.assets.layout import RANGED_VIEWS

    names = {f"{view}_between" for view in RANGED_VIEWS} | {f"{view}_all_brands_between" for view in RANGED_VIEWS}
    return frozenset(f"{schema}.{name}" for name in names)


def check_chart_sql(sql: str, schema: str) -> None:
    """Refuse a chart query that is not one SELECT, or calls a function off CHART_FUNCTIONS and
    the bundle's range functions (RefusedQuery, one line)."""
    statements = _parse(sql)
    if len(statements) != 1 or type(statements[0]).__name__ != "SelectStmt":
        raise RefusedQuery("A chart query must be one SELECT statement")
    allowed_bundle = bundle_functions(schema)
    for name in _functions(statements[0]):
        schema_part, _, function = name.rpartition(".")
        if name in allowed_bundle or (schema_part in ("", CATALOG) and function in CHART_FUNCTIONS):
            continue
        raise RefusedQuery(f"Function {name}() may not be called in a chart query "
                           "(only aggregates, arithmetic, text and date functions, and the bundle's range functions)")
    _check_relations(statements[0])


def check_sql_lab_sql(sql: str) -> None:
    """Refuse a SQL Lab statement that calls a function of REFUSED_FUNCTIONS or reads a relation
    of REFUSED_RELATIONS (RefusedQuery, one line)."""
    for statement in _parse(sql):
        for name in _functions(statement):
            schema_part, _, function = name.rpartition(".")
            # case folded: a quoted "TS_STAT" is another function, but Superset's SQL Lab
            # rewrites a quoted "ts_stat" into it (sqlglot upper-cases function names)
            if schema_part.lower() in ("", CATALOG) and function.lower() in REFUSED_FUNCTIONS:
                raise RefusedQuery(f"Function {name}() may not be called here: it runs a query string, acts on "
                                   "other sessions or reads the server's settings")
        _check_relations(statement)


def _parse(sql: str) -> list:
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        return [raw.stmt for raw in parse_sql(sql)]
    except ParseError as exc:
        raise RefusedQuery(f"PostgreSQL cannot parse this query: {exc}") from None


def _functions(tree) -> Iterator[str]:
    """Every function the statement calls, as `name` or `schema.name` (as the server folds them)."""
    from pglast.visitors import Visitor

    found: list[str] = []

    class Calls(Visitor):
        def visit_FuncCall(self, ancestors, node):  # noqa: N802 - pglast's visitor names
            found.append(".".join(part.sval for part in node.funcname))

        def visit_SQLValueFunction(self, ancestors, node):  # noqa: N802
            name = node.op.name.removeprefix("SVFOP_").lower().removesuffix("_n")  # CURRENT_TIME(3): _N
            if name not in CHART_VALUE_FUNCTIONS:
                found.append(name)

    Calls()(tree)
    return iter(found)


def _check_relations(tree) -> None:
    from pglast.visitors import Visitor

    refused: list[str] = []

    class Relations(Visitor):
        def visit_RangeVar(self, ancestors, node):  # noqa: N802
            if (node.schemaname or CATALOG) == CATALOG and node.relname in REFUSED_RELATIONS:
                refused.append(node.relname)

    Relations()(tree)
    if refused:
        raise RefusedQuery(f"{refused[0]} may not be read here: it shows other sessions or the server's settings")
