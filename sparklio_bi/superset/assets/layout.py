"""The bundle's layout: Superset's native export format, named once (folders, file names, the
placeholder that keeps secrets out of git), and the bundle's error."""
from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError

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
# Dashboard 5's server-health datasets (database and table sizes, statement statistics) describe
# the server they are read on, so they always read the primary, even when the analytics database
# reads a standby (SPARKLIO_READER_URL); without a standby both point at the same server.
SERVER_DATABASE_NAME = "Sparklio Server Health"
DATABASE_NAMES = (DATABASE_NAME, SERVER_DATABASE_NAME)
# Datasets on the rollups: Superset gives their SQL the chart's time range (Jinja, with
# ENABLE_TEMPLATE_PROCESSING), and <view>_between(since, until) answers exactly that range.
RANGED_VIEWS = ("agent_stats", "error_stats", "router_stats", "workflow_stats", "asset_stats", "workflow_daily",
               "active_users")


RANGE_SLACK = "1 minute"  # Superset's filter and the bounds it gives the SQL differ by up to a second


# How coarse a ranged dataset's rows may be for the chart's query (rendered by Superset per query):
# 'exact' (every row at its own time) for a series finer than an hour, 'hour' for a series by hour
# (a day's row would fall on its first hour), 'day' for any other use of period_start (a series by
# day, week, month...), 'month' for totals over the range (whole months as one row each). A filter
# on period_start other than the range's own ends is not shown to this template: the SQL mutator
# (`exact_when_filtered`) makes those queries 'exact'.
FINER_THAN_AN_HOUR = ("PT1S", "PT1M", "PT5M", "PT10M", "PT15M", "PT30M", "PT0.5H")
COARSEST = ("{% set asked = (columns|string) ~ (groupby|string) ~ (metrics|string) ~ (time_grain|string) %}"
            "{% if " + repr(list(FINER_THAN_AN_HOUR)) + "|select('in', asked)|list %}'exact'"
            "{% elif 'PT1H' in asked %}'hour'{% elif 'period_start' in asked %}'day'{% else %}'month'{% endif %}")


def ranged_sql(view: str, schema: str = CANONICAL_SCHEMA) -> str:
    """The SQL of the dataset named after `view`: its function over the chart's time range, the
    rows near either end at their exact time so that Superset's own filter cuts them, and rows no
    coarser than the query needs (not workflow_daily: a calendar of days)."""
    bound = "{%% if %s %%}'{{ %s }}'{%% else %%}null{%% endif %%}"
    coarsest = "" if view == "workflow_daily" else f", {COARSEST}"
    return f"select * from {schema}.{view}_between({bound % ('from_dttm', 'from_dttm')}, " \
           f"{bound % ('to_dttm', 'to_dttm')}, interval '{RANGE_SLACK}'{coarsest})"


_RANGED_CALL = re.compile(r"((?:_stats|\bactive_users)_between\((?:'([^']*)'|null), (?:'([^']*)'|null), "
                          r"interval '(\d+) (second|minute)s?', )'(?:month|day|hour)'\)", re.IGNORECASE)


def exact_when_filtered(sql: str) -> str:
    """`sql` with its ranged calls made 'exact' when a query on one of them filters period_start
    other than by the range's own ends (a custom SQL WHERE, a comparison in a simple filter): the
    rows must then come at their own times for that filter to count them as the raw rows are.
    A bound within the slack of the call's since (>=) or until (<) is the range's own."""
    first = _RANGED_CALL.search(sql)
    if first is None:
        return sql
    from sqlglot import exp

    exact = _RANGED_CALL.sub(lambda m: m[1] + "'exact')", sql)
    tree = _statement(sql)
    if tree is None:
        return exact  # not understood: right before fast
    since, until = _moment(first[2]), _moment(first[3])
    slack = timedelta(**{first[5].lower() + "s": int(first[4])})

    def own_bound(term) -> bool:
        value = term.expression.this if isinstance(term.expression, exp.StrToTime) else term.expression
        if not (isinstance(term.this, exp.Column) and term.this.name.lower() == "period_start"
                and isinstance(value, exp.Literal) and value.is_string):
            return False
        moment, end = _moment(value.this), since if isinstance(term, exp.GTE) else until
        return moment is not None and end is not None and abs(moment - end) <= slack

    for select in tree.find_all(exp.Select):
        where = select.args.get("where")
        if where is None:
            continue
        for term in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
            mentions = any(column.name.lower() == "period_start" for column in term.find_all(exp.Column))
            if mentions and not (isinstance(term, (exp.GTE, exp.LT)) and own_bound(term)):
                return exact
    return sql


# Superset writes each time bound as TO_TIMESTAMP('<moment>', 'YYYY-MM-DD HH24:MI:SS.US')
# (PostgresEngineSpec.convert_dttm). to_timestamp is only stable, so PostgreSQL calls it again for
# every row a scan filters: 68 of the 92 ms of chart 4.1's "Last quarter" at 90,909 projects.
_SUPERSET_BOUND = re.compile(r"TO_TIMESTAMP\('(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6})', "
                             r"'YYYY-MM-DD HH24:MI:SS\.US'\)")


def literal_time_bounds(sql: str) -> str:
    """Superset's TO_TIMESTAMP(...) time bounds as timestamptz literals: the same moment, read in
    the same session time zone, but a constant from parse time on instead of a call per row."""
    return _SUPERSET_BOUND.sub(r"TIMESTAMPTZ '\1'", sql)


# The ranged functions with a twin over every brand (the rollups with brand columns), and the
# dataset columns that twin leaves null
_BRANDED_CALL = re.compile(r"\b((?:agent|error|workflow|asset)_stats|workflow_daily|active_users)_between\(",
                           re.IGNORECASE)
BRAND_COLUMNS = ("brand_id", "brand_name")


def all_brands_when_unused(sql: str) -> str:
    """`sql` reading the rollups added up over every brand (`<view>_all_brands_between`: a few
    rows a period instead of one per brand) when nothing in it can see the brand: no column named
    brand_id or brand_name anywhere (a group by, a filter, a row level security rule, a metric),
    no whole-row reference, and a `*` only in the dataset's own `select * from <view>_between(...)`
    inside the query that picks its columns. Anything else, or SQL it cannot parse, is left as it
    is: the rows per brand give the same sums."""
    if _BRANDED_CALL.search(sql) is None:
        return sql
    from sqlglot import exp

    tree = _statement(sql)
    if tree is None:
        return sql
    aliases = {alias.name.lower() for alias in tree.find_all(exp.TableAlias)}
    for column in tree.find_all(exp.Column):
        name = column.name.lower()
        if name in BRAND_COLUMNS or (not column.table and name in aliases):
            return sql
    for select in tree.find_all(exp.Select):
        stars = [e for e in select.expressions
                 if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))]
        source = select.args.get("from_") or select.args.get("from")  # sqlglot 28 names it from_
        own = source is not None and _BRANDED_CALL.search(source.sql()) and isinstance(select.parent, exp.Subquery)
        if stars and not own:
            return sql
    return _BRANDED_CALL.sub(lambda m: f"{m[1]}_all_brands_between(", sql)


@functools.lru_cache(maxsize=32)
def _statement(sql: str):
    """`sql` parsed (sqlglot, PostgreSQL), or None when it cannot be parsed or holds more than one
    statement. Cached: the SQL mutator's two passes (exact_when_filtered, then
    all_brands_when_unused) read the same text, and neither changes the tree."""
    import sqlglot

    try:
        statements = sqlglot.parse(sql, read="postgres")
    except sqlglot.errors.SqlglotError:
        return None
    return statements[0] if len(statements) == 1 else None


def _moment(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


# Set by Superset from the object's current ids: they change on every import, so not kept.
VOLATILE_FORM_DATA = ("datasource", "slice_id", "dashboards", "url_params")


class AssetsError(ExpectedError):
    """The bundle is invalid (`problems` lists why, one line each), or Superset refused it."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


# The files a bundle owns, in Superset's layout: export replaces these and nothing else.
OWNED_PATTERNS = (METADATA, "databases/*.yaml", "datasets/*/*.yaml", "charts/*.yaml", "dashboards/*.yaml")
