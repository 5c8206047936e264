"""The dashboards in assets/, checked without any server: the bundle is valid, it holds exactly
the user's dashboards and charts (sparklio_bi.quality.reference), and broken copies are caught with the file and field named."""
from __future__ import annotations

import re
import shutil
import uuid

import pytest
import yaml

from sparklio_bi.quality import reference
from sparklio_bi.superset import assets

CHARTS_PER_DASHBOARD = reference.charts_per_dashboard()


def load(kind: str) -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted((assets.ASSETS_DIR / kind).rglob("*.yaml"))}


def chart_uuids(dashboard: dict) -> list[str]:
    return [node["meta"]["uuid"] for node in dashboard["position"].values()
            if isinstance(node, dict) and node.get("type") == "CHART"]


def test_bundle_is_valid():
    assert assets.validate(assets.ASSETS_DIR) == []


def test_exact_dashboards_and_charts():
    dashboards = {d["dashboard_title"]: d for d in load("dashboards").values()}
    assert {title: len(chart_uuids(d)) for title, d in dashboards.items()} == CHARTS_PER_DASHBOARD
    charts = load("charts")
    assert len(charts) == len(reference.CHARTS)
    assert sorted(u for d in dashboards.values() for u in chart_uuids(d)) == sorted(c["uuid"] for c in charts.values())


def test_every_chart_has_query_context_and_title():
    for name, chart in load("charts").items():
        assert chart["slice_name"].strip(), name
        assert chart["query_context"] and "queries" in yaml.safe_load(chart["query_context"]), name
        assert chart["viz_type"] in assets.VIZ_TYPES, name


def test_no_secret_and_no_volatile_ids():
    databases = {d["database_name"]: d for d in load("databases").values()}
    assert sorted(databases) == sorted(assets.DATABASE_NAMES)
    for database in databases.values():
        assert database["sqlalchemy_uri"] == assets.PLACEHOLDER_URI and database["allow_dml"] is False
    assert databases[assets.DATABASE_NAME]["expose_in_sqllab"] is True
    assert databases[assets.SERVER_DATABASE_NAME]["expose_in_sqllab"] is False  # SQL Lab has the same views on the other
    for name, chart in load("charts").items():
        assert not set(assets.VOLATILE_FORM_DATA) & set(chart["params"]), name
        assert '"datasource"' not in chart["query_context"], name


def test_datasets_state_their_grain_and_time_column():
    for name, dataset in load("datasets").items():
        assert dataset["description"].startswith("Grain: one row"), name
        columns = {c["column_name"]: c for c in dataset["columns"]}
        if dataset["main_dttm_col"]:
            assert columns[dataset["main_dttm_col"]]["is_dttm"], name
        assert all(m["verbose_name"] for m in dataset["metrics"]), name


def test_time_filter_without_default_on_every_dashboard():
    for name, dashboard in load("dashboards").items():
        filters = dashboard["metadata"]["native_filter_configuration"]
        (time_filter,) = [f for f in filters if f["filterType"] == "filter_time"]
        assert time_filter["defaultDataMask"]["extraFormData"] == {}, name
        assert any(n.get("type") == "MARKDOWN" for n in dashboard["position"].values() if isinstance(n, dict)), name


# --- one broken copy with one fault per file; validated once (the schema check starts Superset) --

def edit(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(assets.dump_yaml(data))


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken") / "assets"
    shutil.copytree(assets.ASSETS_DIR, root)
    charts, datasets = root / "charts", root / "datasets" / "Sparklio_Analytics"
    (charts / "Daily_workflow_runs.yaml").write_text("slice_name: [unclosed\n")
    edit(charts / "Intent_distribution.yaml", lambda c: c.update(dataset_uuid=str(uuid.uuid4())))
    edit(charts / "Assets_per_day.yaml", lambda c: c.update(viz_type="sunburst_v9"))
    edit(charts / "New_signups.yaml", lambda c: c.update(query_context=None))
    edit(charts / "Review_approval_rate.yaml", lambda c: c.update(params="not a mapping"))
    edit(charts / "Executions_per_agent.yaml", lambda c: c["params"].update(x_axis="agent"))
    edit(datasets / "users.yaml", lambda d: d.update(table_name="no_such_view"))
    twin = yaml.safe_load((charts / "Size_per_table_top_10.yaml").read_text())["uuid"]
    edit(charts / "Top_10_slowest_queries.yaml", lambda c: c.update(uuid=twin))
    (datasets / "errors.yaml").unlink()
    (datasets / "agent_models.yaml").unlink()
    # the one source of truth: each view's header; and a chart's params, which query_context repeats
    edit(datasets / "router_stats.yaml", lambda d: d["columns"].pop(0))
    edit(datasets / "workflow_stats.yaml", lambda d: d["columns"].append({**d["columns"][0], "column_name": "ghost"}))
    edit(datasets / "asset_stats.yaml", lambda d: next(c for c in d["columns"] if c["column_name"] == "assets")
         .update(type="TEXT"))
    edit(datasets / "agent_stats.yaml", lambda d: d.update(main_dttm_col="agent_name"))
    edit(charts / "Risk_level_distribution.yaml", lambda c: c["params"].update(row_limit=5))
    edit(datasets / "workflows.yaml", lambda d: d["columns"].append(dict(d["columns"][0])))  # Superset keeps one
    edit(datasets / "error_stats.yaml", lambda d: d.update(sql=None))  # back to the view: whole hours only
    twin_dataset = yaml.safe_load((datasets / "brands.yaml").read_text())
    (datasets / "brands_again.yaml").write_text(yaml.safe_dump({**twin_dataset, "uuid": str(uuid.uuid4())}))
    problems = assets.validate(root)
    return problems


def problem(problems, file_name, field):
    found = [p for p in problems if f"/{file_name}: {field}" in p]
    assert found, f"no problem naming {file_name} and {field} in:\n" + "\n".join(problems)
    return found[0]


def test_bad_yaml(broken):
    problem(broken, "charts/Daily_workflow_runs.yaml", "yaml")


def test_dangling_dataset_uuid(broken):
    problem(broken, "charts/Intent_distribution.yaml", "dataset_uuid")


def test_unknown_viz_type(broken):
    assert "sunburst_v9" in problem(broken, "charts/Assets_per_day.yaml", "viz_type")


def test_missing_query_context(broken):
    problem(broken, "charts/New_signups.yaml", "query_context")


def test_superset_schema_runs_offline(broken):
    assert "mapping" in problem(broken, "charts/Review_approval_rate.yaml", "params")


def test_unknown_column(broken):
    assert "'agent'" in problem(broken, "charts/Executions_per_agent.yaml", "params")


def test_dataset_without_view_file(broken):
    assert "no_such_view" in problem(broken, "datasets/Sparklio_Analytics/users.yaml", "table_name")


def test_duplicate_uuid(broken):
    problem(broken, "charts/Top_10_slowest_queries.yaml", "uuid")


def test_missing_dataset(broken):
    problem(broken, "charts/Latest_20_failures_recovered_or_not.yaml", "dataset_uuid")
    problem(broken, "dashboards/Errors__Exceptions.yaml", "metadata.native_filter_configuration.NATIVE_FILTER-agent")


def test_dataset_columns_follow_the_views_header(broken):
    """A dataset lists exactly its view's header columns, with their types and time column."""
    assert "is in sql/views/router_stats__v2.sql but not in the dataset" in \
        problem(broken, "datasets/Sparklio_Analytics/router_stats.yaml", "columns")
    assert "'ghost' is not a column of sql/views/workflow_stats__v2.sql" in \
        problem(broken, "datasets/Sparklio_Analytics/workflow_stats.yaml", "columns")
    assert "'BIGINT'" in problem(broken, "datasets/Sparklio_Analytics/asset_stats.yaml", "columns.assets.type")
    assert "'period_start'" in problem(broken, "datasets/Sparklio_Analytics/agent_stats.yaml", "main_dttm_col")


def test_a_rollup_dataset_reads_its_range_function(broken):
    """A chart on the plain error_stats view would count whole hours and days only."""
    assert "error_stats_between" in problem(broken, "datasets/Sparklio_Analytics/error_stats.yaml", "sql")


def test_a_column_listed_twice(broken):
    """Superset's import would merge the two without a word: validate names it."""
    assert "listed 2 times" in problem(broken, "datasets/Sparklio_Analytics/workflows.yaml", "columns")


def test_a_view_with_two_datasets(broken):
    """Superset's import would make a second dataset on the same view."""
    assert "is already the dataset of" in problem(broken, "datasets/Sparklio_Analytics/brands_again.yaml", "table_name")


def test_query_context_agrees_with_params(broken):
    assert "row_limit" in problem(broken, "charts/Risk_level_distribution.yaml", "query_context.form_data.row_limit")


def test_dashboard_chart_link(broken):
    problem(broken, "dashboards/Workflow_Execution_Overview.yaml", "position.CHART-1-1.meta.uuid")


def test_zip_has_one_top_folder_and_the_uri(tmp_path):
    import zipfile

    uri = "postgresql+psycopg2://reader:s3cret@db.example:5432/sparklio"
    primary = "postgresql+psycopg2://reader:s3cret@primary.example:5432/sparklio"
    path = assets.zip_bundle(assets.ASSETS_DIR, tmp_path / "bundle.zip", "analytics", uri, primary)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert {name.split("/")[0] for name in names} == {assets.ZIP_ROOT}
        database = yaml.safe_load(archive.read(f"{assets.ZIP_ROOT}/databases/Sparklio_Analytics.yaml"))
        server = yaml.safe_load(archive.read(f"{assets.ZIP_ROOT}/databases/Sparklio_Server_Health.yaml"))
        metadata = yaml.safe_load(archive.read(f"{assets.ZIP_ROOT}/metadata.yaml"))
    assert database["sqlalchemy_uri"] == uri and metadata["type"] == "Dashboard"
    assert server["sqlalchemy_uri"] == primary  # dashboard 5 reads the primary's own statistics
    assert len(names) == len(list(assets.ASSETS_DIR.rglob("*.yaml")))


def test_zip_puts_the_configured_analytics_schema_on_every_dataset(tmp_path, monkeypatch):
    import zipfile

    from click.testing import CliRunner

    from sparklio_bi.cli import main

    monkeypatch.setenv("ANALYTICS_SCHEMA", "reporting")  # read by the CLI, passed down to the zip
    path = tmp_path / "bundle.zip"
    result = CliRunner().invoke(main, ["assets", "zip", "-o", str(path)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(path) as archive:
        schemas = {yaml.safe_load(archive.read(name))["schema"]
                   for name in archive.namelist() if "/datasets/" in name}
    assert schemas == {"reporting"}
    committed = {yaml.safe_load(p.read_text())["schema"] for p in (assets.ASSETS_DIR / "datasets").rglob("*.yaml")}
    assert committed == {assets.CANONICAL_SCHEMA}


def test_zip_without_a_uri_carries_no_secret_and_with_one_is_private(tmp_path):
    import zipfile

    plain = assets.zip_bundle(assets.ASSETS_DIR, tmp_path / "plain.zip", "analytics")
    with zipfile.ZipFile(plain) as archive:
        text = "".join(archive.read(name).decode() for name in archive.namelist())
    assert assets.PLACEHOLDER_URI in text
    assert "sparklio_reader:XXXXXXXXXX@" in assets.PLACEHOLDER_URI  # Superset's own mask, the reader role
    secret = assets.zip_bundle(assets.ASSETS_DIR, tmp_path / "secret.zip", "analytics", "postgresql://u:s3cret@h/db")
    assert secret.stat().st_mode & 0o777 == 0o600


def test_the_brand_filter_reaches_every_chart_whose_dataset_has_a_brand():
    """A chart left out of the Brand filter's scope shows every brand while the filter is set
    (1.1 was, until workflow_daily got its brand_id)."""
    datasets = {d["uuid"]: {c["column_name"] for c in d["columns"]} for d in load("datasets").values()}
    charts = {c["uuid"]: c for c in load("charts").values()}
    checked = 0
    for name, dashboard in load("dashboards").items():
        ids = {node["meta"]["chartId"]: node["meta"]["uuid"] for node in dashboard["position"].values()
               if isinstance(node, dict) and node.get("type") == "CHART"}
        for flt in dashboard["metadata"]["native_filter_configuration"]:
            if flt["id"] != "NATIVE_FILTER-brand":
                continue
            excluded = set(flt["scope"]["excluded"])
            for chart_id, chart_uuid in ids.items():
                has_brand = "brand_id" in datasets[charts[chart_uuid]["dataset_uuid"]]
                assert (chart_id in excluded) != has_brand, f"{name}: {charts[chart_uuid]['slice_name']}"
                checked += 1
    assert checked >= 15  # the loop saw the dashboards that have a Brand filter


def test_every_asset_file_is_in_the_form_an_export_writes():
    """A hand edit that wraps lines otherwise than the export does shows as Superset differing
    from assets/ in `doctor` (five chart descriptions did)."""
    for path in sorted(assets.ASSETS_DIR.rglob("*.yaml")):
        text = path.read_text()
        assert assets.dump_yaml(yaml.safe_load(text)) == text, path.relative_to(assets.ASSETS_DIR)


def test_a_filter_on_period_start_beside_the_range_makes_the_query_exact():
    """What the SQL mutator makes of Superset's queries on a ranged dataset: its own time bounds
    (up to the slack off the call's) and filters on other columns keep the query's rows; any
    other use of period_start in a WHERE (a custom SQL WHERE, a comparison in a simple filter)
    makes them 'exact', and SQL it cannot parse is made exact too (right before fast)."""
    from sparklio_bi.superset.assets.layout import exact_when_filtered

    query = ("SELECT agent_name AS agent_name, sum(executions) AS \"Executions\"\nFROM (select * from "
             "analytics.agent_stats_between('2026-11-24T22:00:00', '2026-12-01T22:00:00', interval '1 minute', "
             "'month')\n) AS virtual_table\nWHERE period_start >= TO_TIMESTAMP('2026-11-24 22:00:00.000000', "
             "'YYYY-MM-DD HH24:MI:SS.US') AND period_start < TO_TIMESTAMP('2026-12-01 22:00:01.000000', "
             "'YYYY-MM-DD HH24:MI:SS.US'){}\nGROUP BY agent_name LIMIT 10000")
    kept = ["", " AND brand_id = 3", " AND period_start < '2026-12-01 22:00:30'", " AND agent_name = 'period_start'"]
    exact = [" AND (extract(hour from period_start) > 3)", " AND period_start > '2026-11-26'",
             " AND period_start >= '2026-11-24 22:05:00'", " AND NOT period_start < '2026-11-30'"]
    for extra in kept:
        assert exact_when_filtered(query.format(extra)) == query.format(extra), extra
    for extra in exact:
        assert exact_when_filtered(query.format(extra)) == query.format(extra).replace("'month')", "'exact')"), extra
    broken = query.format(" AND (((")
    assert "'exact')" in exact_when_filtered(broken)
    assert exact_when_filtered("select * from analytics.agent_logs where period_start > now()") == \
        "select * from analytics.agent_logs where period_start > now()"


def test_a_query_that_cannot_see_the_brand_reads_the_rollups_over_all_brands():
    """What the SQL mutator makes of queries on a dataset with brand columns: the same query on
    <view>_all_brands_between when nothing in it can see the brand; the rows per brand when a
    column, filter, rule or `*` could (a brand filter, a group by brand, a row level security
    clause, the samples' `select *`, a whole-row reference), when it reads no such dataset
    (router_stats has no brand), and when it cannot be parsed (right before fast)."""
    from sparklio_bi.superset.assets.layout import all_brands_when_unused

    call = "analytics.{}_between('2026-11-24T22:00:00', null, interval '1 minute'{})"
    query = ("SELECT {select} FROM (select * from " + call + ") AS virtual_table{where} "
             "GROUP BY 1 ORDER BY \"SUM(executions)\" DESC LIMIT 10000")

    def case(select="agent_name, sum(executions) AS \"SUM(executions)\"", view="agent_stats", where="",
             grain=", 'month'"):
        return query.format(view, grain, select=select, where=where)

    swapped = [case(), case(where=" WHERE agent_name = 'brand_id'"), case(view="error_stats"),
               case(view="workflow_stats", select="status, sum(runs) AS \"SUM(executions)\""),
               case(view="asset_stats", where=" WHERE period_start >= '2026-11-25'", grain=", 'exact'"),
               case(view="workflow_daily", select="day, sum(workflow_count) AS \"SUM(executions)\"", grain="")]
    kept = [case(select="brand_name, sum(executions) AS \"SUM(executions)\""),
            case(where=" WHERE brand_id IN (3, 4)"), case(where=" WHERE (brand_id = 7)"),
            case(select="*"), case(select="virtual_table.*"), case(select="count(distinct virtual_table)"),
            case(select="sum(executions) FILTER (WHERE brand_name = 'x') AS \"SUM(executions)\""),
            case(view="router_stats", select="intent_type, sum(decisions) AS \"SUM(executions)\""),
            case(where=" WHERE ((("), "select * from " + call.format("agent_stats", ", 'day'")]
    for sql in swapped:
        out = all_brands_when_unused(sql)
        assert out == re.sub(r"_between\(", "_all_brands_between(", sql), sql
    for sql in kept:
        assert all_brands_when_unused(sql) == sql, sql
    assert all_brands_when_unused("select agent_name, sum(executions) from " + call.format("agent_stats", "")
                                  + " group by 1").count("agent_stats_all_brands_between(") == 1  # SQL Lab


def test_supersets_time_bounds_become_literals_and_nothing_else_changes():
    """The SQL mutator's last step: each TO_TIMESTAMP bound Superset writes becomes a timestamptz
    literal of the same text; other text, a to_timestamp of another format, is left as it is."""
    from sparklio_bi.superset.assets.layout import literal_time_bounds

    query = ("SELECT brand_name, COUNT(project_id) FROM analytics.brands WHERE project_created_at >= "
             "TO_TIMESTAMP('2026-09-05 08:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US') AND project_created_at < "
             "TO_TIMESTAMP('2026-12-05 08:00:01.250000', 'YYYY-MM-DD HH24:MI:SS.US') GROUP BY brand_name")
    assert literal_time_bounds(query) == (
        "SELECT brand_name, COUNT(project_id) FROM analytics.brands WHERE project_created_at >= "
        "TIMESTAMPTZ '2026-09-05 08:00:00.000000' AND project_created_at < "
        "TIMESTAMPTZ '2026-12-05 08:00:01.250000' GROUP BY brand_name")
    other = "select to_timestamp('05.09.2026', 'DD.MM.YYYY'), 'TO_TIMESTAMP(''x'')'"
    assert literal_time_bounds(other) == other
