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
# Datasets on the rollups: Superset gives their SQL the chart's time range (Jinja, with
# ENABLE_TEMPLATE_PROCESSING), and <view>_between(since, until) answers exactly that range.
RANGED_VIEWS = ("agent_stats", "error_stats", "router_stats", "workflow_stats", "asset_stats", "workflow_daily")


RANGE_SLACK = "1 minute"  # Superset's filter and the bounds it gives the SQL differ by up to a second


# Whether a chart's query shows totals over its range (no series by period_start, no other filter
# on it): then whole months may come as one row each (rendered by Superset per query).
TOTALS_ONLY = ("{% if 'period_start' in (columns|string) or 'period_start' in (groupby|string) "
               "or 'period_start' in (metrics|string) or (filter|selectattr('col', 'equalto', 'period_start')"
               "|rejectattr('op', 'equalto', 'TEMPORAL_RANGE')|list) %}false{% else %}true{% endif %}")


def ranged_sql(view: str, schema: str = CANONICAL_SCHEMA) -> str:
    """The SQL of the dataset named after `view`: its function over the chart's time range, the
    rows near either end at their exact time so that Superset's own filter cuts them, and whole
    months as one row when the chart shows totals (not workflow_daily: a calendar of days)."""
    bound = "{%% if %s %%}'{{ %s }}'{%% else %%}null{%% endif %%}"
    months = "" if view == "workflow_daily" else f", {TOTALS_ONLY}"
    return f"select * from {schema}.{view}_between({bound % ('from_dttm', 'from_dttm')}, " \
           f"{bound % ('to_dttm', 'to_dttm')}, interval '{RANGE_SLACK}'{months})"


# Set by Superset from the object's current ids: they change on every import, so not kept.
VOLATILE_FORM_DATA = ("datasource", "slice_id", "dashboards", "url_params")


class AssetsError(BundleError):
    """The bundle is invalid (`problems` lists why, one line each), or Superset refused it."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


# The files a bundle owns, in Superset's layout: export replaces these and nothing else.
OWNED_PATTERNS = (METADATA, "databases/*.yaml", "datasets/*/*.yaml", "charts/*.yaml", "dashboards/*.yaml")
