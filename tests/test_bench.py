"""`sparklio-bi bench`'s measurements, run once on the test session's Superset (no browser)."""
from __future__ import annotations

import json

import pytest

from sparklio_bi.postgres import privileges
from sparklio_bi.quality import bench, reference, reference_api, reference_host
from sparklio_bi.quality.reference import SELF_OBSERVING, VOLATILE


@pytest.mark.slow  # 20-55 s: `pytest -m 'not slow'` leaves it out of the inner loop
def test_bench_measures_every_chart_and_dashboard(server, api, bootstrapped, settings, tmp_path):
    owner_url = bootstrapped["url"]
    reader_url = privileges.reader_url(owner_url, settings)
    results = bench.measure(server, api, owner_url, reader_url, runs=1)
    results = json.loads(json.dumps(results, default=str))  # what results.json holds

    assert len(results["charts"]) == len(reference.CHARTS) and len(results["dashboards"]) == len(reference.DASHBOARDS)
    for chart in results["charts"]:
        for figure in ("reference_ms", "query_ms", "api_forced_ms", "api_cached_ms"):
            assert set(chart[figure]) >= {"p50", "p95", "max"}, (chart["key"], figure)
            assert 0 < chart[figure]["p50"] <= chart[figure]["p95"] <= chart[figure]["max"], (chart["key"], figure)
        assert chart["dataset"].startswith("analytics."), chart
        assert chart["queries"] and all("select" in q.lower() for q in chart["queries"])
        expected = "volatile" if chart["key"] in VOLATILE else "self-observing" if chart["key"] in SELF_OBSERVING else True
        assert chart["equal"] == expected, (chart["key"], chart["equal"])
    for dashboard in results["dashboards"]:
        assert dashboard["charts"] >= 3 and dashboard["requests"] >= dashboard["charts"]
        assert dashboard["concurrent_ms"]["p50"] > 0
        assert dashboard["render_ms"] is None  # no browser here
    assert sum(d["charts"] for d in results["dashboards"]) == len(reference.CHARTS)
    assert sum(d["filters"] for d in results["dashboards"]) > 0
    targets = results["targets"]
    assert set(targets) == set(bench.TARGETS)
    assert targets["render"]["met"] is None and targets["render_warm_browser"]["met"] is None
    assert targets["speedup_query"]["ratio"] > 0
    assert targets["speedup"]["ratio"] > 0
    assert isinstance(targets["query_p95"]["met"], bool)

    results.update(command="sparklio-bi bench --runs 1", date="today", runs=1)
    (tmp_path / "RESULTS-dashboards.md").write_text(bench.markdown(results))
    assert "| 8.4 |" in (tmp_path / "RESULTS-dashboards.md").read_text()
    assert any(line.startswith("8.4 ") for line in bench.summary_lines(results))


@pytest.mark.slow  # 20-55 s: `pytest -m 'not slow'` leaves it out of the inner loop
def test_bench_measures_every_ranged_chart_on_every_range_while_rows_arrive(server, api, bootstrapped, settings):
    owner_url = bootstrapped["url"]
    reader_url = privileges.reader_url(owner_url, settings)
    ranged = bench.measure_ranges(server, api, owner_url, reader_url, runs=1, progress=lambda line: None)
    ranged = json.loads(json.dumps(ranged, default=str))
    # every chart but 5.2-5.4, and API Performance's
    ranged_count = 26 + len(reference_host.CHARTS) + len(reference_api.CHARTS)
    assert len(ranged["charts"]) == len(bench.ranged_charts(rollups_only=False)) == ranged_count
    for chart in ranged["charts"]:
        assert len(chart["ranges"]) == 1 + len(bench.NAMED_RANGES) + bench.CUSTOM_RANGES, chart["key"]
        for figure in chart["ranges"].values():
            assert 0 < figure["p50"] <= figure["p95"] and figure["live_rows"] >= 0
    assert ranged["write_rate_per_hour"] > 0
    target = bench.range_targets(ranged)["range_query_p95"]
    assert isinstance(target["met"], bool) and target["figure"].startswith("worst ")
    results = {"runs": 1, "charts": [], "dashboards": [], "targets": {}, "ranges": ranged}
    assert "| chart | default p95 |" in bench.markdown(results)
