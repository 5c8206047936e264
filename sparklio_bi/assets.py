"""The dashboards as code: assets/ holds Superset's native export layout (metadata.yaml,
databases/, datasets/<db>/, charts/, dashboards/), objects linked by literal UUIDs.

validate() checks a bundle offline; import_bundle(), export_bundle() and zip_bundle() go through
Superset's own import and export commands, never behind Superset's back into its tables.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from . import config, views
from .errors import BundleError

ASSETS_DIR = config.PROJECT_ROOT / "assets"
ASSET_DIRECTORIES = ("databases", "datasets", "charts", "dashboards")
METADATA = "metadata.yaml"
EXPORT_VERSION = "1.0.0"
# Secrets never live in assets/: the real URI is injected when importing or zipping.
PLACEHOLDER_URI = "postgresql+psycopg2://sparklio_reader:XXXXXXXXXX@127.0.0.1:5433/sparklio"
VIZ_TYPES = frozenset({"echarts_timeseries_line", "echarts_timeseries_bar", "echarts_area", "pie",
                       "big_number_total", "big_number", "table", "ag-grid-table", "pivot_table_v2",
                       "mixed_timeseries"})
ZIP_ROOT = "sparklio_dashboards"
CANONICAL_SCHEMA = "analytics"  # datasets' schema in assets/; replaced by ANALYTICS_SCHEMA on import
DATABASE_NAME = "Sparklio Analytics"  # the bundle's database when assets/ has none yet
# Set by Superset from the object's current ids: they change on every import, so not kept.
VOLATILE_FORM_DATA = ("datasource", "slice_id", "dashboards", "url_params")


class AssetsError(BundleError):
    """The bundle is invalid (`problems` lists why, one line each), or Superset refused it."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


# --- YAML ---------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """Multi-line strings (markdown, query_context JSON) as literal blocks: readable diffs."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class _Loader(yaml.SafeLoader):
    """Safe YAML without aliases: Superset's exports never use them, and a few nested aliases
    (a "billion laughs" file of 2 KB) expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in assets",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Parse one asset file (safe, no aliases)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def dump_yaml(data: Any) -> str:
    """YAML with sorted keys, the form every file in assets/ has."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)


def read_bundle(assets_dir: Path) -> dict[str, str]:
    """Text of every YAML file of the bundle, by path relative to assets_dir (UTF-8; a file that
    is not raises AssetsError naming it)."""
    texts, problems = _read_texts(assets_dir)
    if problems:
        raise AssetsError(problems[0], problems)
    return texts


def _read_texts(assets_dir: Path) -> tuple[dict[str, str], list[str]]:
    texts, problems = {}, []
    for path in sorted(assets_dir.rglob("*.yaml")):
        try:
            texts[path.relative_to(assets_dir).as_posix()] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{path}: encoding: not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start})")
    return texts, problems


# --- validate -----------------------------------------------------------------------------

def validate(assets_dir: Path) -> list[str]:
    """Every problem of the bundle, one line each: "path: field: message" (empty when valid)."""
    if not assets_dir.is_dir():
        return [f"{assets_dir}: -: not a directory"]
    texts, unreadable = _read_texts(assets_dir)
    configs, problems = _parse(texts)
    problems += _link_problems(configs)
    problems += _schema_problems(configs)
    return unreadable + views.released_problems() + [f"{assets_dir / problem}" for problem in problems]


def _parse(texts: dict[str, str]) -> tuple[dict[str, dict], list[str]]:
    configs, problems = {}, []
    for rel, text in texts.items():
        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            problems.append(f"{rel}: yaml: {' '.join(str(exc).split())}")
            continue
        if not isinstance(data, dict):
            problems.append(f"{rel}: yaml: not a mapping")
        elif rel != METADATA and rel.split("/")[0] not in ASSET_DIRECTORIES:
            problems.append(f"{rel}: path: not in {', '.join(ASSET_DIRECTORIES)}")
        else:
            configs[rel] = data
    if METADATA not in texts:
        problems.append(f"{METADATA}: -: missing")
    elif METADATA in configs and configs[METADATA].get("version") != EXPORT_VERSION:
        problems.append(f"{METADATA}: version: must be {EXPORT_VERSION}")
    return configs, problems


def _of_kind(configs: dict[str, dict], kind: str) -> dict[str, dict]:
    return {rel: cfg for rel, cfg in configs.items() if rel.startswith(kind + "/")}


def _link_problems(configs: dict[str, dict]) -> list[str]:
    problems, seen = [], {}
    for rel, cfg in configs.items():
        uuid = cfg.get("uuid")
        if uuid and uuid in seen:
            problems.append(f"{rel}: uuid: {uuid} is also the uuid of {seen[uuid]}")
        seen.setdefault(uuid, rel)
    by_uuid = {kind: {cfg.get("uuid"): cfg for cfg in _of_kind(configs, kind).values()}
               for kind in ASSET_DIRECTORIES}
    problems += _dataset_problems(_of_kind(configs, "datasets"), by_uuid)
    problems += _chart_problems(_of_kind(configs, "charts"), by_uuid)
    problems += _dashboard_problems(_of_kind(configs, "dashboards"), by_uuid)
    return problems


def _dataset_problems(datasets: dict[str, dict], by_uuid: dict[str, dict]) -> list[str]:
    problems, known_views = [], views.all_versions()
    for rel, cfg in datasets.items():
        if cfg.get("database_uuid") not in by_uuid["databases"]:
            problems.append(f"{rel}: database_uuid: no database with uuid {cfg.get('database_uuid')}")
        if not cfg.get("sql") and cfg.get("table_name") not in known_views:
            problems.append(f"{rel}: table_name: no view {cfg.get('table_name')!r} in {views.VIEWS_DIR}")
        if not cfg.get("columns"):
            problems.append(f"{rel}: columns: none listed (time-series charts need them)")
        elif not cfg.get("sql") and cfg.get("table_name") in known_views:
            problems += _header_problems(rel, cfg, cfg["table_name"], known_views[cfg["table_name"]][-1])
    return problems


# How Superset names the types of the views' header columns (as its export writes them)
SUPERSET_TYPES = {"bigint": "BIGINT", "integer": "INTEGER", "text": "TEXT", "numeric": "NUMERIC",
                  "double precision": "DOUBLE PRECISION", "timestamptz": "TIMESTAMP WITH TIME ZONE",
                  "date": "DATE", "boolean": "BOOLEAN", "name": "VARCHAR"}


def _header_problems(rel: str, cfg: dict, view: str, version: int) -> list[str]:
    """A dataset on a view lists exactly the columns of the view's header (the one source of
    truth: sql/views/<view>__v<N>.sql, N the newest), with their types and its time column."""
    source = f"sql/views/{view}__v{version}.sql"
    header = {c.name: SUPERSET_TYPES.get(c.type, c.type.upper()) for c in views.documented_columns(view, version)}
    listed = {c.get("column_name"): c.get("type") for c in cfg["columns"] if not c.get("expression")}
    problems = [f"{rel}: columns: {name!r} is in {source} but not in the dataset"
                for name in sorted(header.keys() - listed.keys())]
    problems += [f"{rel}: columns: {name!r} is not a column of {source}" for name in sorted(listed.keys() - header.keys())]
    problems += [f"{rel}: columns.{name}.type: {listed[name]!r}, but {source} says {header[name]!r}"
                 for name in sorted(header.keys() & listed.keys())
                 if listed[name] != header[name] and not str(listed[name]).startswith(header[name] + "(")]
    time_column = views.time_column(view, version)
    if time_column and cfg.get("main_dttm_col") != time_column:
        problems.append(f"{rel}: main_dttm_col: {cfg.get('main_dttm_col')!r}, but {source} marks "
                        f"{time_column!r} as the time column")
    return problems


def _dataset_names(dataset: dict) -> set[str]:
    names = {c.get("column_name") for c in dataset.get("columns") or []}
    return names | {m.get("metric_name") for m in dataset.get("metrics") or []}


def _chart_problems(charts: dict[str, dict], by_uuid: dict[str, dict]) -> list[str]:
    problems = []
    for rel, cfg in charts.items():
        dataset = by_uuid["datasets"].get(cfg.get("dataset_uuid"))
        if dataset is None:
            problems.append(f"{rel}: dataset_uuid: no dataset with uuid {cfg.get('dataset_uuid')}")
        if cfg.get("viz_type") not in VIZ_TYPES:
            problems.append(f"{rel}: viz_type: {cfg.get('viz_type')!r} is not one of {sorted(VIZ_TYPES)}")
        if not cfg.get("query_context"):
            problems.append(f"{rel}: query_context: missing (GET /api/v1/chart/<id>/data/ needs it)")
        if not str(cfg.get("slice_name") or "").strip():
            problems.append(f"{rel}: slice_name: empty title")
        if dataset is not None and isinstance(cfg.get("params"), dict):
            problems += [f"{rel}: params: {name!r} is not a column or metric of {dataset.get('table_name')}"
                         for name in sorted(_params_names(cfg["params"]) - _dataset_names(dataset))]
        if isinstance(cfg.get("params"), dict) and cfg.get("query_context"):
            problems += _query_context_problems(rel, cfg["params"], cfg["query_context"])
    return problems


def _query_context_problems(rel: str, params: dict, query_context: str) -> list[str]:
    """The saved query_context (what the chart data API runs) repeats params as its form_data:
    every setting must agree, or the dashboard and Explore would show different charts."""
    try:
        form_data = json.loads(query_context).get("form_data") or {}
    except (ValueError, AttributeError):
        return [f"{rel}: query_context: not a JSON object"]
    return [f"{rel}: query_context.form_data.{key}: {form_data.get(key)!r} disagrees with params.{key} {value!r}"
            for key, value in sorted(params.items())
            if key not in VOLATILE_FORM_DATA and form_data.get(key) != value]


def _params_names(params: dict) -> set[str]:
    """Columns and saved metrics a chart's params name (ad-hoc SQL is not parsed)."""
    names = {params.get("x_axis"), params.get("metric"), params.get("timeseries_limit_metric")}
    for key in ("groupby", "all_columns", "metrics"):
        names.update(params.get(key) or [])
    names.update(f.get("subject") for f in params.get("adhoc_filters") or [] if f.get("expressionType") == "SIMPLE")
    return {name for name in names if isinstance(name, str) and name}


def _dashboard_problems(dashboards: dict[str, dict], by_uuid: dict[str, dict]) -> list[str]:
    problems = []
    for rel, cfg in dashboards.items():
        position = cfg.get("position") if isinstance(cfg.get("position"), dict) else {}
        charts = [node for node in position.values() if isinstance(node, dict) and node.get("type") == "CHART"]
        for node in charts:
            if node.get("meta", {}).get("uuid") not in by_uuid["charts"]:
                problems.append(f"{rel}: position.{node.get('id')}.meta.uuid: no chart with uuid "
                                f"{node.get('meta', {}).get('uuid')}")
        chart_ids = {node.get("meta", {}).get("chartId") for node in charts}
        if len(chart_ids) != len(charts):
            problems.append(f"{rel}: position: two CHART nodes share a meta.chartId")
        metadata = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
        for flt in metadata.get("native_filter_configuration") or []:
            problems += _filter_problems(rel, flt, by_uuid, chart_ids)
    return problems


def _filter_problems(rel: str, flt: dict, by_uuid: dict[str, dict], chart_ids: set) -> list[str]:
    problems, where = [], f"{rel}: metadata.native_filter_configuration.{flt.get('id')}"
    for target in flt.get("targets") or []:
        if "datasetUuid" not in target:
            continue
        dataset = by_uuid["datasets"].get(target["datasetUuid"])
        column = (target.get("column") or {}).get("name")
        if dataset is None:
            problems.append(f"{where}.targets.datasetUuid: no dataset with uuid {target['datasetUuid']}")
        elif column and column not in _dataset_names(dataset):
            problems.append(f"{where}.targets.column: {column!r} is not a column of {dataset.get('table_name')}")
    for chart_id in (flt.get("scope") or {}).get("excluded") or []:
        if chart_id not in chart_ids:
            problems.append(f"{where}.scope.excluded: {chart_id} is no chartId of the position")
    return problems


def _schema_problems(configs: dict[str, dict]) -> list[str]:
    """Superset's own import schemas; they need an initialised app (their modules import the
    models), so without one they run in a child process on a throwaway SQLite metadata database."""
    configs = {rel: cfg for rel, cfg in configs.items() if rel != METADATA}
    from flask import has_app_context

    if has_app_context():
        return _schema_problems_here(configs)
    return _schema_problems_offline(configs)


def _schema_problems_here(configs: dict[str, dict]) -> list[str]:
    from marshmallow import ValidationError
    from superset.commands.importers.v1.assets import ImportAssetsCommand

    problems = []
    for rel, cfg in configs.items():
        schema = ImportAssetsCommand.schemas.get(rel.split("/")[0] + "/")
        if rel.startswith("databases/"):
            cfg = {**cfg, "password": "injected-at-import"}  # the masked placeholder needs one
        try:
            schema.load(cfg)
        except ValidationError as exc:
            problems += [f"{rel}: {field}: {message}" for field, message in _flatten(exc.messages)]
        problems += _length_problems(rel, cfg)
    return problems


def _models() -> dict[str, Any]:
    """Superset's model of each asset kind, and of a dataset's columns and metrics."""
    from superset.connectors.sqla.models import SqlaTable, SqlMetric, TableColumn
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.models.slice import Slice

    return {"databases": Database, "datasets": SqlaTable, "charts": Slice, "dashboards": Dashboard,
            "columns": TableColumn, "metrics": SqlMetric}


def _length_problems(rel: str, cfg: dict, kind: str | None = None, where: str = "") -> list[str]:
    """Text longer than Superset's column for it (its schemas do not check: the import fails)."""
    from sqlalchemy import String

    model = _models()[kind or rel.split("/")[0]]
    problems = []
    for field, value in cfg.items():
        column = model.__table__.columns.get(field)
        limit = column.type.length if column is not None and isinstance(column.type, String) else None
        if isinstance(value, str) and limit and len(value) > limit:
            problems.append(f"{rel}: {where}{field}: {len(value)} characters, Superset keeps at most {limit}")
        if kind is None and field in ("columns", "metrics") and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    problems += _length_problems(rel, item, field, f"{field}.{i}.")
    return problems


def _flatten(messages: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        yield prefix or "-", " ".join(messages)
    else:
        yield prefix or "-", str(messages)


_OFFLINE_CONFIG = 'SECRET_KEY = "offline-schema-check"\nSQLALCHEMY_DATABASE_URI = "sqlite:///{path}"\n'


def _schema_problems_offline(configs: dict[str, dict]) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "superset_config.py").write_text(_OFFLINE_CONFIG.format(path=Path(tmp, "metadata.db")))
        env = {**os.environ, "SUPERSET_CONFIG_PATH": str(Path(tmp, "superset_config.py"))}
        proc = subprocess.run([sys.executable, "-c", "from sparklio_bi import assets; assets._schema_worker()"],
                              input=json.dumps(configs, default=str), env=env, cwd=tmp,
                              capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        raise AssetsError(f"Superset's schema check did not run: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1])


def _schema_worker() -> None:
    """Child process of _schema_problems_offline: configs on stdin, problems as JSON on stdout."""
    from superset.app import create_app

    configs = json.load(sys.stdin)
    with create_app().app_context():
        from superset import db
        from superset.databases.ssh_tunnel.models import SSHTunnel
        from superset.models.core import Database

        for model in (Database, SSHTunnel):  # the database schema looks up existing databases
            model.__table__.create(db.engine)
        print(json.dumps(_schema_problems_here(configs)))


# --- import -------------------------------------------------------------------------------

def import_bundle(assets_dir: Path, database_uri: str, username: str | None = None,
                  kinds: tuple[str, ...] = ASSET_DIRECTORIES) -> dict[str, int]:
    """Import (overwrite) every object of `kinds` with Superset's ImportAssetsCommand, in one
    transaction; returns how many objects of each kind. Raises AssetsError and imports nothing
    if invalid."""
    with _superset(username):
        problems = validate(assets_dir)
        if problems:
            raise AssetsError(f"{len(problems)} problem(s), nothing imported:\n" + "\n".join(problems),
                              problems)
        texts = {rel: text for rel, text in read_bundle(assets_dir).items()
                 if rel == METADATA or rel.split("/")[0] in kinds}
        contents = _for_import(texts, database_uri, "assets")
        _import_contents(contents)
    return {kind: sum(rel.startswith(kind + "/") for rel in contents) for kind in ASSET_DIRECTORIES}


def _import_contents(contents: dict[str, str]) -> None:
    from sqlalchemy.exc import SAWarning
    from superset.commands.exceptions import CommandInvalidError
    from superset.commands.importers.v1.assets import ImportAssetsCommand

    with _one_transaction() as session, warnings.catch_warnings():
        # Superset 6.1.0's dataset model loads its database inside a flush (SAWarnings, harmless)
        warnings.simplefilter("ignore", SAWarning)
        try:
            ImportAssetsCommand(contents).run()
        except Exception as exc:  # the command wraps every failure in ImportFailedError
            cause = exc.__cause__ or exc
            detail = (cause.normalized_messages() if isinstance(cause, CommandInvalidError)
                      else f"{type(cause).__name__}: {cause}")
            raise AssetsError(f"import failed, nothing changed: {detail}") from None
    session.commit()


@contextlib.contextmanager
def _one_transaction() -> Iterator[Any]:
    """ImportAssetsCommand commits once at the end, but Flask-AppBuilder's
    add_permission_view_menu (called when a database brings a new schema) commits on its own,
    which would keep a half-imported bundle. During the import a commit is only a flush; any
    rollback is final, and the caller commits after a clean run."""
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
        raise AssetsError("import failed and was rolled back, nothing changed")


def _for_import(texts: dict[str, str], database_uri: str, bundle_type: str) -> dict[str, str]:
    """The bundle with the real database URI (password included), the configured analytics
    schema on every dataset, and the metadata type."""
    out = dict(texts)
    out[METADATA] = dump_yaml({"type": bundle_type, "version": EXPORT_VERSION})
    schema = config.load().analytics_schema
    for rel in texts:
        if rel.startswith(("databases/", "datasets/")):
            cfg = load_yaml(texts[rel])
            if rel.startswith("databases/"):
                cfg["sqlalchemy_uri"] = database_uri
            else:
                cfg["schema"] = schema
            out[rel] = dump_yaml(cfg)
    return out


@contextlib.contextmanager
def _superset(username: str | None) -> Iterator[None]:
    """An app context (the caller's, else a new one) with the admin as the acting user."""
    from flask import has_app_context

    from . import superset_app

    with contextlib.ExitStack() as stack:
        if not has_app_context():
            stack.enter_context(superset_app.app_context())
        from superset import security_manager
        from superset.utils.core import override_user

        username = username or os.environ.get("SUPERSET_ADMIN_USERNAME") or "admin"
        user = security_manager.find_user(username=username)
        if user is None:
            raise AssetsError(f"Superset has no user {username!r} to import or export as")
        stack.enter_context(override_user(user))
        yield


# --- export -------------------------------------------------------------------------------

def export_bundle(assets_dir: Path, username: str | None = None) -> list[Path]:
    """Export from Superset the dashboards on the bundle's database, with everything they use,
    and every dataset on that database (the raw views no chart reads are there for SQL Lab and
    Explore), normalised (no ids, no secrets, sorted keys) into assets_dir; returns the files
    written."""
    with _superset(username):
        from superset.commands.dashboard.export import ExportDashboardsCommand
        from superset.commands.dataset.export import ExportDatasetsCommand

        ids, dataset_ids = _bundle_ids(assets_dir)
        if not ids:
            raise AssetsError("Superset has no dashboard with charts on the bundle's database")
        exported = {name: content() for name, content in ExportDashboardsCommand(ids).run()}
        exported.update((name, content()) for name, content in ExportDatasetsCommand(dataset_ids).run())
    return _write(assets_dir, normalise(exported))


def _bundle_ids(assets_dir: Path) -> tuple[list[int], list[int]]:
    """Ids of the dashboards with charts on the bundle's database, and of its datasets."""
    from superset import db
    from superset.connectors.sqla.models import SqlaTable
    from superset.models.dashboard import Dashboard

    uuids = {load_yaml(text).get("uuid") for rel, text in read_bundle(assets_dir).items()
             if rel.startswith("databases/")} if assets_dir.is_dir() else set()
    ours = lambda database: str(database.uuid) in uuids or database.database_name == DATABASE_NAME  # noqa: E731
    dashboards = sorted(d.id for d in db.session.query(Dashboard).all()
                        if any(c.table is not None and ours(c.table.database) for c in d.slices))
    datasets = sorted(t.id for t in db.session.query(SqlaTable).all() if ours(t.database))
    return dashboards, datasets


def normalise(exported: dict[str, str]) -> dict[str, str]:
    """Superset's export files -> the committed form: stable names, no volatile ids or secrets."""
    configs = {rel: yaml.safe_load(text) for rel, text in exported.items()
               if rel.split("/")[0] in ASSET_DIRECTORIES}
    out = {METADATA: dump_yaml({"type": "assets", "version": EXPORT_VERSION})}
    for rel, cfg in sorted(configs.items()):
        kind = rel.split("/")[0]
        cfg = _NORMALISERS[kind](copy.deepcopy(cfg))
        out[_file_name(kind, rel, cfg, out)] = dump_yaml(cfg)
    return out


def _file_name(kind: str, rel: str, cfg: dict, taken: dict) -> str:
    from werkzeug.utils import secure_filename

    title = {"databases": "database_name", "datasets": "table_name", "charts": "slice_name",
             "dashboards": "dashboard_title"}[kind]
    folder = rel.rsplit("/", 1)[0]  # datasets/<database>/ keeps its database folder
    name = f"{folder}/{secure_filename(cfg[title]) or cfg['uuid']}.yaml"
    return name if name not in taken else f"{name[:-5]}_{cfg['uuid'][:8]}.yaml"


def _database(cfg: dict) -> dict:
    cfg["sqlalchemy_uri"] = PLACEHOLDER_URI
    cfg.pop("password", None)
    return cfg


def _dataset(cfg: dict) -> dict:
    cfg["schema"] = CANONICAL_SCHEMA  # git holds one form whatever ANALYTICS_SCHEMA a deployment uses
    cfg["columns"] = sorted(cfg.get("columns") or [], key=lambda c: c["column_name"])
    cfg["metrics"] = sorted(cfg.get("metrics") or [], key=lambda m: m["metric_name"])
    return cfg


def _chart(cfg: dict) -> dict:
    params = cfg.get("params") or {}
    for key in VOLATILE_FORM_DATA:
        params.pop(key, None)
    if cfg.get("query_context"):
        context = json.loads(cfg["query_context"])
        context.pop("datasource", None)
        for query in context.get("queries", []):
            query.pop("datasource", None)
        for key in VOLATILE_FORM_DATA:
            context.get("form_data", {}).pop(key, None)
        cfg["query_context"] = json.dumps(context, indent=2, sort_keys=True)
    return cfg


def stable_chart_id(uuid: str) -> int:
    """The chartId a dashboard file gives a chart: from its UUID, so it never changes."""
    return int(uuid.replace("-", "")[:7], 16)


def _dashboard(cfg: dict) -> dict:
    position, metadata = cfg.get("position") or {}, cfg.get("metadata") or {}
    ids = {}
    for node in position.values():
        if isinstance(node, dict) and node.get("type") == "CHART":
            ids[node["meta"]["chartId"]] = node["meta"]["chartId"] = stable_chart_id(node["meta"]["uuid"])
    remap = lambda old: [ids[i] for i in old if i in ids]  # noqa: E731
    for flt in metadata.get("native_filter_configuration") or []:
        flt.pop("chartsInScope", None)  # the frontend recomputes these from `scope` on load
        flt.pop("tabsInScope", None)
        if "excluded" in flt.get("scope", {}):
            flt["scope"]["excluded"] = remap(flt["scope"]["excluded"])
    metadata["chart_configuration"] = _chart_configuration(metadata.get("chart_configuration") or {}, ids, remap)
    global_scope = metadata.get("global_chart_configuration", {})
    global_scope.pop("chartsInScope", None)
    if "excluded" in global_scope.get("scope", {}):
        global_scope["scope"]["excluded"] = remap(global_scope["scope"]["excluded"])
    metadata["timed_refresh_immune_slices"] = remap(metadata.get("timed_refresh_immune_slices") or [])
    for key in ("map_label_colors", "shared_label_colors", "color_scheme_domain", "positions"):  # the frontend
        # recomputes these (and saves them when an owner merely opens the dashboard)
        metadata.pop(key, None)
    return cfg


def _chart_configuration(configuration: dict, ids: dict, remap) -> dict:
    out = {}
    for old, item in configuration.items():
        if not str(old).isdigit() or int(old) not in ids:
            continue
        item["id"] = ids[int(old)]
        item.get("crossFilters", {}).pop("chartsInScope", None)
        scope = item.get("crossFilters", {}).get("scope")
        if isinstance(scope, dict):
            scope["excluded"] = remap(scope.get("excluded") or [])
        out[str(ids[int(old)])] = item
    return out


_NORMALISERS = {"databases": _database, "datasets": _dataset, "charts": _chart, "dashboards": _dashboard}


# The files a bundle owns, in Superset's layout: export replaces these and nothing else.
OWNED_PATTERNS = (METADATA, "databases/*.yaml", "datasets/*/*.yaml", "charts/*.yaml", "dashboards/*.yaml")


def owned_files(assets_dir: Path) -> list[Path]:
    """The bundle's own files under assets_dir (other files and folders are the user's)."""
    return sorted({path for pattern in OWNED_PATTERNS for path in assets_dir.glob(pattern) if path.is_file()})


def check_export_target(assets_dir: Path) -> None:
    """Export writes into a bundle (it has metadata.yaml), an empty folder or a new one only."""
    if assets_dir.exists() and not (assets_dir / METADATA).is_file() and \
            (not assets_dir.is_dir() or any(assets_dir.iterdir())):
        raise AssetsError(f"{assets_dir} is not a bundle (no {METADATA}) and not empty: "
                          "export into the bundle's folder or an empty one")


def _write(assets_dir: Path, files: dict[str, str]) -> list[Path]:
    """Write the files; remove the bundle's own files of objects no longer exported. A folder that
    is neither a bundle (metadata.yaml) nor empty is refused; no folder is ever removed."""
    check_export_target(assets_dir)
    for old in owned_files(assets_dir) if assets_dir.exists() else []:
        if old.relative_to(assets_dir).as_posix() not in files:
            old.unlink()
    written = []
    for rel, text in sorted(files.items()):
        path = assets_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


# --- zip ----------------------------------------------------------------------------------

def zip_bundle(assets_dir: Path, out_path: Path, database_uri: str | None = None) -> Path:
    """A ZIP (one top folder) for `superset import-dashboards -p ZIP -u admin`. Without
    `database_uri` the database keeps its placeholder: no secret leaves the machine, and a
    Superset that already has the database imports it. With one, the file is made 0600."""
    problems = validate(assets_dir)
    if problems:
        raise AssetsError(f"{len(problems)} problem(s), no zip written:\n" + "\n".join(problems))
    contents = _for_import(read_bundle(assets_dir), database_uri or PLACEHOLDER_URI, "Dashboard")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.unlink(missing_ok=True)
        out_path.touch(mode=0o600 if database_uri else 0o644)
        with zipfile.ZipFile(out_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for rel, text in sorted(contents.items()):  # fixed timestamps: same bundle, same bytes
                archive.writestr(zipfile.ZipInfo(f"{ZIP_ROOT}/{rel}", date_time=(1980, 1, 1, 0, 0, 0)), text)
    except OSError as exc:
        raise AssetsError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    return out_path
