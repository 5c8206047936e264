"""The demo-data generator against a real PostgreSQL: deterministic, in its window, consistent,
realistic enough for every chart, and all-or-nothing."""
import dataclasses
import json
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from sparklio_bi import config
from sparklio_bi.config import PROJECT_ROOT
from sparklio_bi.postgres import database
from sparklio_bi.warehouse import migrate, seed, views

NOW = datetime(2025, 6, 18, 15, 4, 5, 123456, tzinfo=timezone.utc)  # a Wednesday afternoon
TIMESTAMPS = {
    "users": ["created_at"], "brands": ["created_at"], "projects": ["created_at"],
    "workflows": ["created_at", "completed_at"], "router_logs": ["created_at"], "assets": ["created_at"],
    "agent_logs": ["created_at", "error_at", "recovered_at"],
}
# A seed measured by `sparklio-bi bench` at scale 1000 (row counts in benchmarks/results.json).
BENCHMARK = json.loads((PROJECT_ROOT / "benchmarks" / "results.json").read_text())
# Tables that grow in proportion to the scale, and how far a small seed may stray from that
# (assets are drawn per completed workflow: a few per cent of noise at scale 1).
PROPORTIONAL = {"agent_logs": 0.02, "workflows": 0.02, "assets": 0.06, "projects": 0.03, "users": 0.05}


def fresh(make_database, prefix="test_seed"):
    url = make_database(prefix)
    migrate.apply_source_ddl(url, config.load())
    return url


def query(url, sql, *params):
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def scalar(url, sql, *params):
    return query(url, sql, *params)[0][0]


def checksums(url):
    return {table: scalar(url, f"select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) "
                               f"from public.{table} t")
            for table in views.SOURCE_TABLES}


@pytest.fixture(scope="module")
def seeded(make_database):
    url = fresh(make_database)
    return url, seed.seed(url, config.load(), 1.0, seed=42, now=NOW)


def test_same_seed_and_now_give_identical_rows_and_another_seed_does_not(seeded, make_database):
    url, _ = seeded
    other = fresh(make_database)
    seed.seed(other, config.load(), 1.0, seed=42, now=NOW)
    assert checksums(other) == checksums(url)
    seed.seed(other, config.load(), 1.0, seed=43, now=NOW)
    different = checksums(other)
    assert all(different[table] != checksum for table, checksum in checksums(url).items())


def test_counts_follow_the_scale(seeded, make_database):
    """Rows per table at scales 1 and 2 are the benchmark's measured seed (results.json, scale 1000)
    in proportion, and 10,000 agent_logs per unit of scale as the README says; brands grow slower,
    and even a tiny scale fills the top-10 charts."""
    url, one = seeded
    assert one == {table: scalar(url, f"select count(*) from public.{table}") for table in one}
    two = seed.seed(fresh(make_database), config.load(), 2.0, seed=1, now=NOW)
    measured, measured_scale = BENCHMARK["row_counts"], BENCHMARK["scale"]
    for scale, rows in ((1, one), (2, two)):
        assert rows["agent_logs"] == pytest.approx(10_000 * scale, rel=0.02)
        assert rows["router_logs"] == rows["agent_logs"]  # one router decision per agent execution
        for table, tolerance in PROPORTIONAL.items():
            expected = measured[table] * scale / measured_scale
            assert rows[table] == pytest.approx(expected, rel=tolerance), (scale, table, expected)
    assert 10 <= one["brands"] <= two["brands"] < 2 * one["brands"]
    tiny = seed.sizes(0.001)
    assert min(tiny.brands, tiny.users, tiny.projects) >= 10


def test_every_timestamp_is_in_the_90_days_before_now(seeded):
    url, _ = seeded
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            low, high = query(url, f"select min({column}), max({column}) from public.{table}")[0]
            assert NOW - timedelta(days=90) <= low and high <= NOW, (table, column)


def test_children_come_after_their_parents_and_foreign_keys_hold(seeded):
    url, _ = seeded
    broken = {
        "project before user": "projects p join users u on u.id = p.user_id "
                               "where p.created_at < u.created_at",
        "project before brand": "projects p join brands b on b.id = p.brand_id "
                                "where p.created_at < b.created_at",
        "workflow before project": "workflows w join projects p on p.id = w.project_id "
                                   "where w.created_at < p.created_at",
        "step before workflow": "agent_logs a join workflows w on w.id = a.workflow_id "
                                "where a.created_at < w.created_at",
        "route before workflow": "router_logs r join workflows w on w.id = r.workflow_id "
                                 "where r.created_at < w.created_at",
        "asset before workflow": "assets a join workflows w on w.id = a.workflow_id "
                                 "where a.created_at < w.created_at",
        "asset of another project": "assets a join workflows w on w.id = a.workflow_id "
                                    "where a.project_id <> w.project_id",
        "step without workflow": "agent_logs a left join workflows w on w.id = a.workflow_id "
                                 "where w.id is null",
        "steps and routes of a workflow differ": "(select workflow_id, count(*) n from agent_logs group by 1) a "
                                                 "full join (select workflow_id, count(*) n from router_logs "
                                                 "group by 1) r using (workflow_id) where a.n is distinct from r.n",
        "unfinished but completed_at": "workflows "
                                       "where (status in ('running', 'pending')) <> (completed_at is null)",
        "too few or many steps": "(select count(*) n from agent_logs join workflows w on w.id = workflow_id "
                                 "where w.status not in ('running', 'pending') group by w.id) s "
                                 "where n not between 3 and 8",
    }
    for problem, where in broken.items():
        assert scalar(url, f"select count(*) from {where}") == 0, problem


def test_sequences_continue_after_the_seeded_ids(seeded):
    url, counts = seeded
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("insert into users (email) values ('new@example.com') returning id")
        assert cur.fetchone()[0] == counts["users"] + 1
        conn.rollback()


def test_failures_are_rare_mostly_recovered_and_recent_for_every_agent(seeded):
    url, _ = seeded
    failed, recovered, total = query(url, "select count(*) filter (where status <> 'success'), "
                                          "count(*) filter (where status = 'recovered'), count(*) "
                                          "from agent_logs")[0]
    assert 0.01 <= failed / total <= 0.03
    assert 0.7 <= recovered / failed <= 0.9
    week = NOW - timedelta(days=7)
    recent = dict(query(url, "select agent_name, count(*) from agent_logs where status <> 'success' "
                             "and created_at >= %s group by 1", week))
    assert len(recent) == 8 and min(recent.values()) >= 1
    assert scalar(url, "select count(*) from agent_logs "
                       "where status = 'recovered' and created_at >= %s", week) > 0
    assert scalar(url, "select count(distinct error_type) from agent_logs where status = 'error'") >= 4
    assert scalar(url, "select count(*) from agent_logs where status = 'recovered' "
                       "and not recovered_at > error_at") == 0


def test_every_day_has_workflows(seeded):
    url, _ = seeded
    days = query(url, "select d::date, count(w.id) from generate_series(%s::date - 89, %s::date - 1, "
                      "interval '1 day') d left join workflows w on w.created_at::date = d::date "
                      "group by 1 having count(w.id) = 0", NOW, NOW)
    assert days == []


def test_distributions_look_like_a_busy_studio(seeded):
    url, _ = seeded
    statuses = dict(query(url, "select status, count(*)::float / sum(count(*)) over () "
                               "from workflows group by 1"))
    assert 0.8 <= statuses["completed"] <= 0.9 and statuses["failed"] > 0 and statuses["cancelled"] > 0
    assert 0.15 <= scalar(url, "select avg((review_status is null)::int) from assets") <= 0.35
    assert scalar(url, "select count(*) from assets "
                       "where (review_status is null) <> (review_score is null)") == 0
    weekday, weekend = query(url, "select avg(n) filter (where dow between 1 and 5), "
                                  "avg(n) filter (where dow in (0, 6)) "
                                  "from (select extract(dow from created_at) dow, created_at::date, "
                                  "count(*)::float n from workflows group by 1, 2) d")[0]
    assert weekend < 0.7 * weekday
    top_brand_share = scalar(url, "select max(n)::float / sum(n) "
                                  "from (select count(*) n from projects group by brand_id) b")
    assert top_brand_share > 0.15


@pytest.mark.parametrize("scale", [0, -1, float("nan")])
def test_bad_scale_raises_and_leaves_the_data_alone(seeded, scale):
    url, _ = seeded
    before = checksums(url)
    with pytest.raises(ValueError, match="--scale must be > 0"):
        seed.seed(url, config.load(), scale, now=NOW)
    assert checksums(url) == before


def test_a_seed_failing_midway_changes_nothing(make_database):
    url = fresh(make_database)
    seed.seed(url, config.load(), 0.5, now=NOW)
    before = checksums(url)

    def fail_in_agent_logs(table, done, total):
        if table == "agent_logs":
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        seed.seed(url, config.load(), 0.5, seed=9, progress=fail_in_agent_logs)
    assert checksums(url) == before

    query(url, "create schema partial; create table partial.users (like public.users including all); select 1")
    with pytest.raises(psycopg2.errors.UndefinedTable):
        seed.seed(url, dataclasses.replace(config.load(), source_schema="partial"), 0.5,
                  replace_application_data=True)  # past the demo guard, to the missing tables
    assert checksums(url) == before and scalar(url, "select count(*) from partial.users") == 0


def test_progress_reports_every_table_up_to_its_final_count(make_database):
    seen = {}
    def progress(table, done, total):
        seen.setdefault(table, []).append((done, total))

    counts = seed.seed(fresh(make_database), config.load(), 0.5, progress=progress)
    for table, calls in seen.items():
        assert all(done <= total for done, total in calls)
        assert calls[-1] == (counts[table], counts[table])
    assert set(seen) == set(counts)
