"""What the bundle changes in Superset 6.1.0's behaviour, each change with the assumption it
rests on (ASSUMPTIONS, checked with internals.py's by `internals.check()`). superset_config.py's
FLASK_APP_MUTATOR applies them in every Superset process: the analytics engines kept
(keep_engines, engines.py), SQL Lab's statements told from a chart's (mark_sql_lab,
query_rules.py) and SQL Lab's schema quoted in `set search_path` (quote_search_path). With
internals.py, the only module that imports Superset (tests/test_architecture.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparklio_bi.superset import engines, query_rules


def _require(condition: Any, what: str, detail: str) -> None:
    if not condition:
        from sparklio_bi.superset.internals import SupersetChanged  # internals imports this module

        raise SupersetChanged(what, detail)


def keep_engines() -> None:
    """Superset's analytics engines kept and pooled in this process (engines.py says why)."""
    from superset.models import core

    core.create_engine = engines.keeping(core.create_engine)


def mark_sql_lab() -> None:
    """SQL_QUERY_MUTATOR cannot tell SQL Lab's statements from a chart's (SQL Lab runs them inside a
    test request context of its own): sql_lab.execute_sql_statements runs inside
    query_rules.sql_lab() here, so that SQL Lab gets its rules and everything else the charts'."""
    from superset import sql_lab

    original = sql_lab.execute_sql_statements
    if getattr(original, "marks_sql_lab", False):
        return

    def marked(*args: Any, **kwargs: Any) -> Any:
        with query_rules.sql_lab():
            return original(*args, **kwargs)

    marked.marks_sql_lab, marked.__wrapped__ = True, original
    sql_lab.execute_sql_statements = marked


def _check_sql_lab() -> None:
    from superset import sql_lab

    task = getattr(sql_lab.get_sql_results, "run", sql_lab.get_sql_results)  # a Celery task: its function
    _require("execute_sql_statements" in getattr(task, "__code__", compile("", "", "exec")).co_names,
             "sql_lab.get_sql_results",
             "no longer runs SQL Lab's statements through execute_sql_statements")
    statements = getattr(sql_lab.execute_sql_statements, "__wrapped__", sql_lab.execute_sql_statements)
    _require("mutate_sql_based_on_config" in statements.__code__.co_names, "sql_lab.execute_sql_statements",
             "no longer where SQL Lab's statements meet SQL_QUERY_MUTATOR")


def _search_path(schema: str) -> str:
    return 'set search_path = "' + schema.replace('"', '""') + '"'


_UNQUOTED: list[Callable] = []  # Superset's own get_prequeries, once replaced


def quote_search_path() -> None:
    """SQL Lab's `schema` reaches PostgresEngineSpec.get_prequeries, which 6.1.0 pastes into
    `set search_path = "<schema>"` unescaped: a `"` ended the name and what followed ran before
    every check. Quoted here as upstream does since PR #39840 (assumption "search-path-unquoted")."""
    from superset.db_engine_specs.postgres import PostgresEngineSpec

    if not _UNQUOTED:
        _UNQUOTED.append(PostgresEngineSpec.get_prequeries)
        PostgresEngineSpec.get_prequeries = classmethod(lambda cls, database=None, catalog=None, schema=None:
                                                        [_search_path(schema)] if schema else [])


def _check_search_path() -> None:
    from superset.db_engine_specs.postgres import PostgresEngineSpec

    made = (_UNQUOTED[0] if _UNQUOTED else PostgresEngineSpec.get_prequeries)(database=None, schema='a"b')
    _require(made != [_search_path('a"b')], "PostgresEngineSpec.get_prequeries",
             "it quotes the schema itself now: drop quote_search_path")
    _require(made == ['set search_path = "a"b"'], "PostgresEngineSpec.get_prequeries", f"it gave {made!r}")


def _check_engine_per_query() -> None:
    from superset.models.core import Database

    _require("create_engine" in Database._get_sqla_engine.__code__.co_names, "Database._get_sqla_engine",
             "no longer calls models.core.create_engine")


def limit_logins(app: Any, limit: str) -> None:
    """Every login post rate-limited (`limit` per client address) with the security manager's
    limiter: the form (Flask-AppBuilder's AuthDBView: Superset 6.1.0 limits only its own GET-only
    SupersetAuthView, so the form post went unlimited) and the REST login."""
    for name in LOGIN_BLUEPRINTS:
        if name in app.blueprints:
            app.appbuilder.sm.limiter.limit(limit, methods=["POST"])(app.blueprints[name])


LOGIN_BLUEPRINTS = ("AuthDBView", "SecurityApi")


def _check_login_blueprints() -> None:
    """A process's second app has no views of its own (Flask-AppBuilder registers each view once)."""
    from flask import current_app

    views = {getattr(view, "endpoint", None): view for view in current_app.appbuilder.baseviews}
    for name in LOGIN_BLUEPRINTS:
        _require(name in current_app.blueprints or getattr(views.get(name), "blueprint", None) is not None,
                 "its login views", f"no blueprint {name!r}")
    _require(getattr(current_app.appbuilder.sm, "limiter", None) is not None, "the security manager",
             "no limiter")


ASSUMPTIONS: dict[str, Callable[[], None]] = {
    "search-path-unquoted": _check_search_path,
    "sql-lab-statements": _check_sql_lab,
    "engine-per-query": _check_engine_per_query,
    "login-blueprints": _check_login_blueprints,
}
