"""Superset's export files -> the committed form: stable names and chart ids, no volatile ids,
no secrets, sorted columns."""
from __future__ import annotations

import copy
import json
import re

import yaml

from sparklio_bi.superset.assets.files import dump_yaml
from sparklio_bi.superset.assets.layout import (
    ASSET_DIRECTORIES,
    CANONICAL_SCHEMA,
    EXPORT_VERSION,
    METADATA,
    PLACEHOLDER_URI,
    RANGED_VIEWS,
    VOLATILE_FORM_DATA,
    ranged_sql,
)


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
    view = cfg.get("table_name")
    if view in RANGED_VIEWS and cfg.get("sql"):  # the deployment's schema is named in its SQL too
        schema = re.match(r"select \* from (\w+)\.", cfg["sql"])
        if schema and cfg["sql"] == ranged_sql(view, schema[1]):
            cfg["sql"] = ranged_sql(view)
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
