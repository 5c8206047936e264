"""The rollups' refresh cost and how soon a new row shows."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import requests

from sparklio_bi.postgres import database
from sparklio_bi.quality import reference
from sparklio_bi.quality.bench.harness import Progress
from sparklio_bi.quality.bench.ranges import insert_new_rows
from sparklio_bi.quality.bench.stats import stats
from sparklio_bi.superset.rest import get, listing
from sparklio_bi.warehouse import rollups

MAX_REFRESHES = 60  # until a round of checks ends (about 12 at scale 1000), at most


def measure_rollups(base: str, session: requests.Session, owner_url: str, settings, runs: int,
                    progress: Progress) -> dict:
    """The rollups' upkeep and freshness, after everything else (it writes rows): each run, one
    refresh interval's worth of new rows at the data's own rate (agent_logs and router_logs copied
    from the latest, with created_at now; a few workflows completed), then one incremental refresh,
    timed; then how long a failure inserted now, and one dated three days back, take to show in
    charts 2.1 and 8.2 as a dashboard loads them (the served refresher and the cache included)."""
    with database.connect(owner_url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) / greatest(extract(epoch from max(created_at) - min(created_at)), 1) "
                    "from public.agent_logs")
        per_second = float(cur.fetchone()[0])
    batch = max(1, round(per_second * settings.refresh_seconds))
    checking = rollups.RoundRobin()  # as serve's refresher: each refresh checks a few slices too
    samples, round_ends = [], []
    while len(samples) < runs or (not round_ends and len(samples) < MAX_REFRESHES):
        with database.connect(owner_url) as conn, conn.cursor() as cur:
            insert_new_rows(cur, batch)
            cur.execute("""update public.workflows set status = 'completed', completed_at = now()
                           where id in (select id from public.workflows where status = 'running' limit %s)""",
                        (max(1, batch // 6),))
        started = time.perf_counter()
        rollups.refresh_in_transaction(owner_url, settings, checking=checking)
        samples.append((time.perf_counter() - started) * 1000)
        done = checking.committed()
        if done is not None and done.round_seconds is not None:
            round_ends.append(len(samples))
    refresh = stats(samples)
    share = sum(samples) / len(samples) / (settings.refresh_seconds * 1000)  # the mean over a check round
    round_refreshes = round_ends[0] if round_ends else None
    progress(f"rollup refresh after {batch} new rows, with its check slices: p50 {refresh['p50']:.0f} ms, "
             f"max {refresh['max']:.0f} ms every {settings.refresh_seconds:g} s = {100 * share:.1f} % of one core "
             f"on average; a round of checks took {round_refreshes} refreshes")

    ids = {c["slice_name"]: c["id"] for c in listing(base, session, "chart")}
    titles = reference.chart_titles()
    watched = {key: ids[titles[key]] for key in ("2.1", "8.2")}
    with database.connect(owner_url) as conn, conn.cursor() as cur:
        cur.execute("select id from public.workflows order by id desc limit 1")
        workflow = cur.fetchone()[0]
        run = datetime.now(timezone.utc).strftime("%H%M%S")  # names of their own: earlier runs' probes stay
        probes = {"inserted_now": f"bench_probe_now_{run}", "inserted_3_days_back": f"bench_probe_late_{run}"}
        for probe, age in ((probes["inserted_now"], "0 minutes"), (probes["inserted_3_days_back"], "3 days")):
            cur.execute("""insert into public.agent_logs (workflow_id, agent_name, model, status, latency_ms,
                           error_type, error_message, error_at, created_at)
                           values (%s, %s, 'gpt-4o', 'error', 500, %s, 'bench probe',
                                   now() - %s::interval, now() - %s::interval)""", (workflow, probe, probe, age, age))
    inserted = time.perf_counter()
    shown: dict[str, float] = {}
    while len(shown) < 2 and time.perf_counter() - inserted < 180:
        seen = set()
        for chart_id in watched.values():
            data = get(session, f"{base}/api/v1/chart/{chart_id}/data/").json()["result"][0]["data"]
            seen |= {value for row in data for value in row.values()}
        for name, probe in probes.items():
            if probe in seen and name not in shown:
                shown[name] = round(time.perf_counter() - inserted, 1)
        time.sleep(1)
    progress(f"freshness: a row inserted now showed after {shown.get('inserted_now')} s, one dated 3 days "
             f"back after {shown.get('inserted_3_days_back')} s")
    return {"refresh_ms": refresh, "rows_per_refresh": batch, "refresh_interval_s": settings.refresh_seconds,
            "refresh_core_share": round(share, 4), "check_round_refreshes": round_refreshes,
            "freshness_s": {name: shown.get(name) for name in probes}}


def rollup_targets(measured: dict) -> dict:
    """Freshness <= 60 s for a row inserted now and one dated back; upkeep < 10 % of one core."""
    fresh = measured["freshness_s"]
    worst = max((v for v in fresh.values() if v is not None), default=None)
    missing = [k for k, v in fresh.items() if v is None]
    share = measured["refresh_core_share"]
    return {
        "freshness": {"target": "a row inserted into agent_logs shows in the charts within 60 s",
                      "figure": f"worst {worst} s" if worst is not None else "never shown",
                      "met": not missing and worst is not None and worst <= 60,
                      "offenders": missing + [k for k, v in fresh.items() if v is not None and v > 60]},
        "refresh_cost": {"target": "the rollup refresh costs < 10 % of one core",
                         "figure": f"{100 * share:.1f} % (mean; p50 {measured['refresh_ms']['p50']:.0f} ms, "
                                   f"max {measured['refresh_ms']['max']:.0f} ms every {measured['refresh_interval_s']} s, "
                                   "the check slices included)",
                         "met": share < 0.10, "offenders": [] if share < 0.10 else ["refresh"]},
    }
