"""The bundle's layout: Superset's native export format, named once (folders, file names, the
placeholder that keeps secrets out of git), and the bundle's error."""
from __future__ import annotations

from .. import config
from ..errors import BundleError

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


# The files a bundle owns, in Superset's layout: export replaces these and nothing else.
OWNED_PATTERNS = (METADATA, "databases/*.yaml", "datasets/*/*.yaml", "charts/*.yaml", "dashboards/*.yaml")
