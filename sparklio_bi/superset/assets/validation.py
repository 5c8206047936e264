"""`assets validate`: every problem of a bundle, offline, one line each: links by UUID, datasets
against the views' headers, charts against their datasets, and Superset's own import schemas."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from sparklio_bi.superset import internals
from sparklio_bi.superset.assets.files import load_yaml, read_texts
from sparklio_bi.superset.assets.layout import (
    ASSET_DIRECTORIES,
    EXPORT_VERSION,
    METADATA,
    RANGED_VIEWS,
    VIZ_TYPES,
    VOLATILE_FORM_DATA,
    AssetsError,
    ranged_sql,
)
from sparklio_bi.warehouse import views


def validate(assets_dir: Path) -> list[str]:
    """Every problem of the bundle, one line each: "path: field: message" (empty when valid)."""
    if not assets_dir.is_dir():
        return [f"{assets_dir}: -: not a directory"]
    texts, unreadable = read_texts(assets_dir)
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
    problems, known_views, seen = [], views.all_versions(), {}
    for rel, cfg in datasets.items():
        key = (cfg.get("database_uuid"), cfg.get("table_name"), cfg.get("sql") or None)
        if key in seen:  # Superset's import would make a second dataset on the same view
            problems.append(f"{rel}: table_name: {cfg.get('table_name')!r} is already the dataset of {seen[key]}")
        seen.setdefault(key, rel)
        if cfg.get("database_uuid") not in by_uuid["databases"]:
            problems.append(f"{rel}: database_uuid: no database with uuid {cfg.get('database_uuid')}")
        if not cfg.get("sql") and cfg.get("table_name") not in known_views:
            problems.append(f"{rel}: table_name: no view {cfg.get('table_name')!r} in {views.VIEWS_DIR}")
        problems += _duplicate_problems(rel, cfg)
        if not cfg.get("columns"):
            problems.append(f"{rel}: columns: none listed (time-series charts need them)")
        elif cfg.get("table_name") in known_views and (not cfg.get("sql") or cfg["table_name"] in RANGED_VIEWS):
            problems += _header_problems(rel, cfg, cfg["table_name"], known_views[cfg["table_name"]][-1])
        if cfg.get("table_name") in RANGED_VIEWS and cfg.get("sql") != ranged_sql(cfg["table_name"]):
            problems.append(f"{rel}: sql: not {ranged_sql(cfg['table_name'])!r}: a chart on it would count "
                            f"whole days and hours only, not its time range")
    return problems


def _duplicate_problems(rel: str, cfg: dict) -> list[str]:
    """A name listed twice: Superset's import keeps one of them without a word."""
    problems = []
    for field, key in (("columns", "column_name"), ("metrics", "metric_name")):
        names = [item.get(key) for item in cfg.get(field) or [] if isinstance(item, dict)]
        problems += [f"{rel}: {field}: {name!r} is listed {names.count(name)} times"
                     for name in sorted({n for n in names if names.count(n) > 1}, key=str)]
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

    schemas, problems = internals.import_schemas(), []
    for rel, cfg in configs.items():
        kind = rel.split("/")[0]
        if kind == "databases":
            cfg = {**cfg, "password": "injected-at-import"}  # the masked placeholder needs one
        try:
            schemas[kind].load(cfg)
        except ValidationError as exc:
            problems += [f"{rel}: {field}: {message}" for field, message in _flatten(exc.messages)]
        problems += _length_problems(rel, cfg, kind)
    return problems


def _length_problems(rel: str, cfg: dict, kind: str, where: str = "") -> list[str]:
    """Text longer than Superset's column for it (its schemas do not check: the import fails)."""
    problems = []
    for field, value in cfg.items():
        limit = internals.text_limit(kind, field) if isinstance(value, str) else None
        if limit and len(value) > limit:
            problems.append(f"{rel}: {where}{field}: {len(value)} characters, Superset keeps at most {limit}")
        if kind == "datasets" and field in ("columns", "metrics") and isinstance(value, list):
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


_OFFLINE_RESULTS: dict[str, list[str]] = {}  # by content: a Superset start-up per distinct bundle and process


def _schema_problems_offline(configs: dict[str, dict]) -> list[str]:
    text = json.dumps(configs, default=str, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()
    if key not in _OFFLINE_RESULTS:
        _OFFLINE_RESULTS[key] = _schema_problems_in_a_child(text)
    return list(_OFFLINE_RESULTS[key])


def _schema_problems_in_a_child(configs_json: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "superset_config.py").write_text(_OFFLINE_CONFIG.format(path=Path(tmp, "metadata.db")))
        env = {**os.environ, "SUPERSET_CONFIG_PATH": str(Path(tmp, "superset_config.py"))}
        worker = "from sparklio_bi.superset.assets import validation; validation.schema_worker()"
        proc = subprocess.run([sys.executable, "-c", worker],
                              input=configs_json, env=env, cwd=tmp,
                              capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        raise AssetsError(f"Superset's schema check did not run: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1])


def schema_worker() -> None:
    """Child process of _schema_problems_offline: configs on stdin, problems as JSON on stdout."""
    configs = json.load(sys.stdin)
    with internals.create_app().app_context():
        internals.create_offline_metadata_tables()
        print(json.dumps(_schema_problems_here(configs)))
