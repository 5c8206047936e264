"""The rollups (sparklio_bi/rollups.py, migration 0007): every *_stats view adds up to exactly
what its raw view holds, per day and dimension values, after a full build and after incremental
refreshes that follow inserts (new, late and backdated rows), updates in place (a failure that
recovers, a workflow that completes, an asset reviewed) and midnight; new rows show at once."""
from __future__ import annotations

from datetime import timedelta

import pytest

from sparklio_bi import config, database, rollups
from tests.conftest import seed_database

# Each stats view against the same sums over its raw view: (stats, raw, dims, stats sums, raw sums)
CHECKS = [
    ("agent_stats", "agent_logs", "brand_id, brand_name, agent_name, model",
     "sum(executions), sum(successes), sum(latency_ms_sum)", "count(*), sum(is_success), sum(latency_ms)"),
    ("error_stats", "errors", "brand_id, brand_name, agent_name, model, error_type",
     "sum(failures), sum(still_failing), sum(recovered), round(sum(recovery_seconds_sum)::numeric, 3)",
     "count(*), sum(1 - is_recovered), sum(is_recovered), round(sum(recovery_seconds)::numeric, 3)"),
    ("router_stats", "router_logs", "intent_type, selected_model, risk_level",
     "sum(decisions), sum(context_before_sum), sum(context_after_sum)",
     "count(*), sum(context_size_before), sum(context_size_after)"),
    ("workflow_stats", "workflows", "brand_id, brand_name, status",
     "sum(runs), sum(durations), round(sum(duration_seconds_sum)::numeric, 3)",
     "count(*), count(duration_seconds), round(sum(duration_seconds)::numeric, 3)"),
    ("asset_stats", "assets", "brand_id, brand_name, asset_type",
     "sum(assets), sum(reviewed), sum(approved), sum(scored), sum(review_score_sum)",
     "count(*), sum(is_reviewed), sum(is_approved), count(review_score), sum(review_score)"),
]


def differences(cur, start: str = "'-infinity'") -> dict[str, list]:
    """Per stats view, the (day, dims) groups whose sums differ from the raw view's, from `start`."""
    out = {}
    for stats, raw, dims, stats_sums, raw_sums in CHECKS:
        cur.execute(f"""
            (select date_trunc('day', period_start), {dims}, {stats_sums} from analytics.{stats}
             where period_start >= {start} group by 1, {dims}
             except
             select date_trunc('day', created_at), {dims}, {raw_sums} from analytics.{raw}
             where created_at >= {start} group by 1, {dims})
            union all
            (select date_trunc('day', created_at), {dims}, {raw_sums} from analytics.{raw}
             where created_at >= {start} group by 1, {dims}
             except
             select date_trunc('day', period_start), {dims}, {stats_sums} from analytics.{stats}
             where period_start >= {start} group by 1, {dims})""")
        found = cur.fetchall()
        if found:
            out[stats] = found[:4]
    return out


@pytest.fixture
def rolled_url(make_database):
    url = make_database("rollups")
    seed_database(url)
    return url


def refresh(url: str, **kwargs) -> list[rollups.Refreshed]:
    return rollups.refresh_in_transaction(url, config.load(), **kwargs)


def test_a_fresh_build_adds_up_to_the_raw_views(rolled_url):
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from analytics.agent_rollup")
        assert cur.fetchone()[0] > 0, "the seed left the rollups empty"
        cur.execute("select count(*) from analytics.agent_logs")
        raw = cur.fetchone()[0]
        cur.execute("select count(*) from analytics.agent_rollup")
        assert cur.fetchone()[0] < raw, "a rollup with as many rows as the raw view saves nothing"
        assert differences(cur) == {}


def test_inserts_and_updates_show_live_or_after_one_refresh(rolled_url):
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        cur.execute("select id from public.workflows order by id desc limit 1")
        workflow = cur.fetchone()[0]
        cur.execute("""insert into public.agent_logs (workflow_id, agent_name, model, status, latency_ms,
                       error_type, error_at, created_at)
                       values (%s, 'planner', 'gpt-4o', 'error', 1234, 'Timeout', now() - interval '30 hours',
                               now() - interval '30 hours') returning id""", (workflow,))
        failure = cur.fetchone()[0]
    refresh(rolled_url)
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        # new rows, now: in the live part at once, no refresh needed
        cur.execute("""insert into public.agent_logs (workflow_id, agent_name, model, status, latency_ms,
                       error_type, error_at, created_at)
                       values (%s, 'planner', 'gpt-4o', 'error', 1234, 'Timeout', now(), now())""", (workflow,))
        cur.execute("""insert into public.router_logs (workflow_id, intent_type, selected_model, risk_level,
                       context_size_before, context_size_after, created_at)
                       values (%s, 'qa', 'gpt-4o', 'low', 100, 50, now())""", (workflow,))
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        assert differences(cur) == {}
        # backdated rows, an old failure that recovers, a workflow that completes, a review:
        # below the watermark, so they wait for the next refresh
        cur.execute("""insert into public.agent_logs (workflow_id, agent_name, model, status, latency_ms, created_at)
                       values (%s, 'new_agent', 'new-model', 'success', 99, now() - interval '20 days')""",
                    (workflow,))
        cur.execute("""update public.agent_logs set status = 'recovered', recovered_at = error_at + interval '1 minute'
                       where id = %s""", (failure,))
        cur.execute("""update public.workflows set status = 'completed', completed_at = created_at + interval '5 minutes'
                       where id = (select id from public.workflows where status <> 'completed'
                                   and created_at < now() - interval '10 days' order by id limit 1)""")
        cur.execute("""update public.assets set review_status = 'approved', review_score = 9.5
                       where id = (select id from public.assets where review_status is null
                                   and created_at < now() - interval '5 days' order by id limit 1)""")
        assert cur.rowcount == 1
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        assert set(differences(cur)) >= {"agent_stats", "workflow_stats", "asset_stats"}, \
            "the test changed nothing below the watermark"
    done = refresh(rolled_url)
    assert sum(r.periods for r in done) > 0
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        assert differences(cur) == {}
        cur.execute("select count(*) from analytics.agent_models where agent_name = 'new_agent'")
        assert cur.fetchone()[0] == 1, "the Agent filter's options miss a new agent"


def test_a_refresh_with_nothing_new_recomputes_only_what_is_cheap(rolled_url):
    refresh(rolled_url)
    done = {r.rollup: r for r in refresh(rolled_url)}
    assert done["workflow"].periods == 0 and done["asset"].periods == 0 and done["router"].periods == 0


def test_midnight_turns_the_hours_of_the_day_into_one_day(rolled_url):
    """Yesterday's hourly rows become one row per day and dimensions at the first refresh after
    midnight (simulated by moving the watermark back by a day)."""
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        cur.execute("update analytics.rollup_state set watermark = watermark - interval '1 day'")
        # what an earlier refresh left for yesterday: hourly rows
        cur.execute("select date_trunc('day', now()) - interval '1 day'")
        yesterday = cur.fetchone()[0]
        cur.execute("delete from analytics.router_rollup where period_start >= %s", (yesterday,))
        for hour in range(24):
            start = yesterday + timedelta(hours=hour)
            cur.execute("insert into analytics.router_rollup select * from analytics.router_buckets('hour', %s, %s)",
                        (start, start + timedelta(hours=1)))
    refresh(rolled_url)
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        cur.execute("""select count(distinct period_start) from analytics.router_rollup
                       where period_start >= %s and period_start < %s""", (yesterday, yesterday + timedelta(days=1)))
        assert cur.fetchone()[0] == 1
        assert differences(cur) == {}


def test_a_full_refresh_rebuilds_a_damaged_rollup(rolled_url):
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        cur.execute("delete from analytics.asset_rollup where period_start < now() - interval '30 days'")
        assert "asset_stats" in differences(cur)
    refresh(rolled_url, full=True)
    with database.connect(rolled_url) as conn, conn.cursor() as cur:
        assert differences(cur) == {}
