"""The dashboards as code: assets/ holds Superset's native export layout (metadata.yaml,
databases/, datasets/<db>/, charts/, dashboards/), objects linked by literal UUIDs.

layout: the format, named once; files: YAML in and out; validation: `assets validate`, offline;
normalise: an export -> the committed form; transfer: import, export and ZIP through Superset's
own commands (its internals only through sparklio_bi.superset.internals).
"""
from sparklio_bi.superset.assets.files import check_export_target, dump_yaml, load_yaml, owned_files, read_bundle
from sparklio_bi.superset.assets.layout import (
           ASSET_DIRECTORIES,
           ASSETS_DIR,
           CANONICAL_SCHEMA,
           DATABASE_NAME,
           DATABASE_NAMES,
           EXPORT_VERSION,
           METADATA,
           PLACEHOLDER_URI,
           RANGED_VIEWS,
           SERVER_DATABASE_NAME,
           VIZ_TYPES,
           VOLATILE_FORM_DATA,
           ZIP_ROOT,
           AssetsError,
           ranged_sql,
)
from sparklio_bi.superset.assets.normalise import normalise, stable_chart_id
from sparklio_bi.superset.assets.transfer import export_bundle, import_bundle, zip_bundle
from sparklio_bi.superset.assets.validation import validate

__all__ = ["ASSETS_DIR", "ASSET_DIRECTORIES", "CANONICAL_SCHEMA", "DATABASE_NAME", "DATABASE_NAMES", "EXPORT_VERSION",
           "METADATA", "PLACEHOLDER_URI", "RANGED_VIEWS", "SERVER_DATABASE_NAME", "VIZ_TYPES", "VOLATILE_FORM_DATA",
           "ZIP_ROOT", "AssetsError", "check_export_target", "dump_yaml", "export_bundle", "import_bundle", "load_yaml",
           "normalise", "owned_files", "ranged_sql", "read_bundle", "stable_chart_id", "validate", "zip_bundle"]
