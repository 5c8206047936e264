"""The targets, the printed summary and the Markdown tables of results.json."""
from __future__ import annotations

from sparklio_bi.quality.bench.dashboards import BROWSER_CONNECTIONS
from sparklio_bi.quality.bench.pooling import pooling_lines
from sparklio_bi.quality.bench.stats import P95_SAMPLES
from sparklio_bi.quality.reference import NOT_COMPARED

TARGETS = {  # name -> (description, limit)
    "query_p95": ("every chart's generated SQL (b), p95 <= 50 ms", 50.0),
    # issue 16 tightened these two from 200 and 1000 ms
    "api_forced_p95": ("every chart's data API, cache bypassed (c), p95 <= 150 ms", 150.0),
    "dashboard_concurrent_p95": ("every dashboard's requests fired concurrently, p95 <= 600 ms", 600.0),
    "render": ("every dashboard's cold render in Chromium (fresh profile, data forced), p95 <= 4000 ms", 4000.0),
    "render_warm_browser": ("every dashboard's render with the browser's HTTP cache warm (data forced), "
                            "p95 <= 4000 ms", 4000.0),
    "speedup_query": ("sum of reference p50 (a) / sum of generated SQL p50 (b) >= 20", 20.0),
    "speedup": ("sum of reference p50 (a) / sum of API forced p50 (c) >= 20", 20.0),
    # issue 16's: where Superset's own per-request code keeps it out of reach,
    # benchmarks/request_split.py shows where the time goes
    "speedup_api_3x": ("sum of reference p50 (a) / sum of API forced p50 (c) >= 3", 3.0),
}


def evaluate(charts: list[dict], dashboards: list[dict]) -> dict:
    """Each target: met or not, the worst figure and the offenders."""
    def over(entries, field, limit, label):
        offenders = [{label: e[label], field: e[field]["p95"]} for e in entries
                     if e.get(field) and e[field]["p95"] > limit]
        measured = [e[field]["p95"] for e in entries if e.get(field)]
        return {"met": not offenders and bool(measured), "worst_ms": max(measured) if measured else None,
                "offenders": offenders}

    out = {}
    for name, field, entries, label in (("query_p95", "query_ms", charts, "key"),
                                        ("api_forced_p95", "api_forced_ms", charts, "key"),
                                        ("dashboard_concurrent_p95", "concurrent_ms", dashboards, "title"),
                                        ("render", "render_ms", dashboards, "title"),
                                        ("render_warm_browser", "render_warm_browser_ms", dashboards, "title")):
        description, limit = TARGETS[name]
        result = over(entries, field, limit, label)
        if name.startswith("render") and not any(d.get("render_ms") for d in dashboards):
            result = {"met": None, "worst_ms": None, "offenders": [], "skipped": "--skip-browser"}
        out[name] = {"target": description, "limit_ms": limit, **result}
    reference_sum = sum(c["reference_ms"]["p50"] for c in charts)
    for name, field in (("speedup_query", "query_ms"), ("speedup", "api_forced_ms"), ("speedup_api_3x", "api_forced_ms")):
        total = sum(c[field]["p50"] for c in charts)
        ratio = reference_sum / total if total else None
        description, limit = TARGETS[name]
        out[name] = {"target": description, "ratio": round(ratio, 3) if ratio is not None else None,
                     "reference_p50_sum_ms": round(reference_sum, 1), f"{field[:-3]}_p50_sum_ms": round(total, 1),
                     "met": ratio is not None and ratio >= limit,
                     "offenders": [] if ratio is not None and ratio >= limit else ["the sums' ratio"]}
    return out


def _ms(figure: dict | None, key: str = "p50") -> str:
    return "-" if not figure else f"{figure[key]:,.1f}"


def summary_lines(results: dict) -> list[str]:
    """The summary table printed at the end."""
    lines = [f"{'chart':<5} {'title':<34} {'ref p50':>9} {'sql p50':>8} {'sql p95':>8} {'api p50':>8} "
             f"{'api p95':>8} {'cached':>7}  equal"]
    for c in results["charts"]:
        equal = "yes" if c["equal"] is True else c["equal"] if c["equal"] in NOT_COMPARED.values() else "NO"
        lines.append(f"{c['key']:<5} {c['title'][:34]:<34} {_ms(c['reference_ms']):>9} {_ms(c['query_ms']):>8} "
                     f"{_ms(c['query_ms'], 'p95'):>8} {_ms(c['api_forced_ms']):>8} "
                     f"{_ms(c['api_forced_ms'], 'p95'):>8} {_ms(c['api_cached_ms']):>7}  {equal}")
    lines += ["", f"{'dashboard':<34} {'reqs':>4} {'conc p50':>9} {'conc p95':>9} {'render p50':>11} "
                  f"{'render p95':>11} {'warm p50':>9}"]
    for d in results["dashboards"]:
        lines.append(f"{d['title'][:34]:<34} {d['requests']:>4} {_ms(d['concurrent_ms']):>9} "
                     f"{_ms(d['concurrent_ms'], 'p95'):>9} {_ms(d['render_ms']):>11} {_ms(d['render_ms'], 'p95'):>11} "
                     f"{_ms(d.get('render_warm_browser_ms')):>9}")
    lines += ["", *pooling_lines(results.get("pooling")), ""]
    for name, target in results["targets"].items():
        state = "skipped" if target["met"] is None else "met" if target["met"] else "NOT MET"
        extra = f" ({target['figure']})" if "figure" in target else \
            f" (ratio {target['ratio']})" if name.startswith("speedup") else \
            f" (worst {target['worst_ms']:,.1f} ms)" if target.get("worst_ms") is not None else ""
        offenders = ", ".join(str(next(iter(o.values()))) if isinstance(o, dict) else str(o)
                              for o in target["offenders"])
        lines.append(f"{state:<8} {target['target']}{extra}" + (f": {offenders}" if offenders else ""))
    return lines


def markdown(results: dict) -> str:
    """benchmarks/RESULTS-dashboards.md: generated, to paste from."""
    m = results.get("machine", {})
    out = ["# Dashboard benchmark", "",
           f"Generated by `{results.get('command', 'sparklio-bi bench')}` on {results.get('date', '?')} "
           f"(git {results.get('git_revision', '?')}). Do not edit: run it again.", "",
           f"Machine: {m.get('platform', '?')}, {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, "
           f"{m.get('memory_gib', '?')} GiB RAM. Scale {results.get('scale', '?')}, {results['runs']} runs "
           "after one warm-up; times in ms.", ""]
    if results.get("row_counts"):
        out += ["Rows: " + ", ".join(f"{t} {n:,}" for t, n in results["row_counts"].items()) + ".", ""]
    if results.get("indexes_dropped"):
        out += ["**Without the source indexes** (`--source-indexes none`: only primary keys on Sparklio's tables; "
                "dropped: " + ", ".join(results["indexes_dropped"]) + "); no time ranges, renders or pooler.", ""]
    boot = results.get("bootstrap") or {}
    if boot:
        parts = [f"bootstrap {boot.get('seconds', 0):.1f} s"]
        if boot.get("seeded"):
            parts.append(f"seed step {boot.get('seed_seconds', 0):.1f} s (peak RSS of the bootstrap process "
                         f"through seeding {boot.get('seed_peak_rss_mib', 0):.0f} MiB)")
        else:
            parts.append("data of the same scale re-used (not seeded)")
        if boot.get("migrate_seconds") is not None:
            parts.append(f"migrate step {boot['migrate_seconds']:.2f} s")
        if boot.get("db_upgrade_seconds") is not None:
            parts.append(f"`db upgrade` at head {boot['db_upgrade_seconds']:.2f} s")
        if boot.get("rollups_full_seconds") is not None:
            parts.append(f"rollups rebuilt from every row (`rollups refresh --full`, what migrations 0007 "
                         f"and 0012 do) {boot['rollups_full_seconds']:.0f} s")
        out += ["Setup: " + "; ".join(parts) + ".", ""]
    roll = results.get("rollups")
    if roll:
        fresh = roll["freshness_s"]
        out += [f"Rollups: an incremental refresh after {roll['rows_per_refresh']} new agent_logs and router_logs "
                f"rows (the data's own rate over {roll['refresh_interval_s']} s) took p50 {roll['refresh_ms']['p50']:.0f} ms, "
                f"p95 {roll['refresh_ms']['p95']:.0f} ms, max {roll['refresh_ms']['max']:.0f} ms, with the check slices "
                f"serve's refresher adds (a round of them in {roll.get('check_round_refreshes')} refreshes): "
                f"{100 * roll['refresh_core_share']:.1f} % of one core on average "
                f"(wall time, client and server). A failure inserted now showed in charts 2.1 and 8.2 (as a "
                f"dashboard loads them, cache allowed) after {fresh['inserted_now']} s; one dated 3 days back "
                f"after {fresh['inserted_3_days_back']} s.", ""]
    out += ["(a) reference SQL on the source tables as the owner; (b) the SQL Superset generates, run "
            "directly as the reader role; (c) `GET /api/v1/chart/<id>/data/?force=true` (at least "
            f"{P95_SAMPLES} times, so that its p95 is one); (d) the same, cached. Equal: (a) and (c) give the same figures.", "",
            "| chart | title | (a) ref p50 | (b) SQL p50 | (b) p95 | (c) API p50 | (c) p95 | (d) cached p50 | equal |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for c in results["charts"]:
        equal = "yes" if c["equal"] is True else c["equal"] if c["equal"] in NOT_COMPARED.values() else "**no**"
        out.append(f"| {c['key']} | {c['title']} | {_ms(c['reference_ms'])} | {_ms(c['query_ms'])} | "
                   f"{_ms(c['query_ms'], 'p95')} | {_ms(c['api_forced_ms'])} | {_ms(c['api_forced_ms'], 'p95')} | "
                   f"{_ms(c['api_cached_ms'])} | {equal} |")
    out += ["", "Dashboards: every chart's data (forced) and every select filter's options, fired "
            f"concurrently over {BROWSER_CONNECTIONS} connections; render: a fresh headless Chromium, "
            "`?force=true`, from navigation to every chart drawn (warm browser: the same page again in the same "
            "browser, its HTTP cache warm, data still forced; of which: the first chart data request sent, and "
            "the last chart data answer received, after navigation start, from the page's Resource Timing).", "",
            "| dashboard | requests | concurrent p50 | p95 | render p50 | render p95 | warm browser p50 | "
            "first data request | last data |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in results["dashboards"]:
        split = d.get("render_warm_browser_phases_ms") or {}
        out.append(f"| {d['title']} | {d['requests']} | {_ms(d['concurrent_ms'])} | {_ms(d['concurrent_ms'], 'p95')} | "
                   f"{_ms(d['render_ms'])} | {_ms(d['render_ms'], 'p95')} | {_ms(d.get('render_warm_browser_ms'))} | "
                   f"{_ms(split.get('first_data_request'))} | {_ms(split.get('last_data'))} |")
    if results.get("pooling"):
        out += ["", "PgBouncer: " + results["pooling"]["how"] + ".", "",
                *[f"- {line}" for line in pooling_lines(results["pooling"])]]
    ranged = results.get("ranges")
    if ranged:
        names = list(ranged["charts"][0]["ranges"]) if ranged["charts"] else []
        out += ["", f"Time ranges: the generated SQL (b) of each chart a time range applies to, for every range below, while "
                f"{ranged['write_rate_per_hour']:,} agent_logs and as many router_logs rows an hour arrived "
                f"({ranged['rows_written']:,} each during the measurement) and the refresher ran; p95 in ms; "
                "live: the most agent_logs rows after the watermark seen beside a figure. "
                "Custom ranges end at any second (seeded).", "",
                "| chart | default p95 | worst p95 | worst range | live rows (max) |", "|---|---:|---:|---|---:|"]
        for c in ranged["charts"]:
            default = next((f for n, f in c["ranges"].items() if n.startswith("default: ")), None)
            worst_name, worst = max(c["ranges"].items(), key=lambda item: item[1]["p95"])
            out.append(f"| {c['key']} {c['title']} | {_ms(default, 'p95')} | {worst['p95']:.1f} | {worst_name} | "
                       f"{max(f['live_rows'] for f in c['ranges'].values()):,} |")
        out += ["", "Ranges measured: " + "; ".join(f"`{n}`" for n in names) + "."]
    out += ["", "| target | result | offenders |", "|---|---|---|"]
    for name, t in results["targets"].items():
        state = "skipped" if t["met"] is None else "met" if t["met"] else "**not met**"
        figure = t["figure"] if "figure" in t else f"ratio {t['ratio']}" if name.startswith("speedup") else \
            f"worst {t['worst_ms']:,.1f} ms" if t.get("worst_ms") is not None else ""
        offenders = ", ".join(f"{next(iter(o.values()))} ({o.get(next(k for k in o if k.endswith('_ms')), '')})"
                              if isinstance(o, dict) else str(o) for o in t["offenders"]) or "-"
        out.append(f"| {t['target']} | {state}{', ' + figure if figure else ''} | {offenders} |")
    return "\n".join(out) + "\n"
