"""The reporting time zone end to end (SPARKLIO_TIMEZONE=Asia/Seoul, Sparklio's team's): Superset's
"today", the reader's session, the rollups' days and workflow_daily all cut days at Seoul's
midnight, and the daily numbers equal the reference computed in that zone, whatever zone the
server runs in, on a fresh install and on one that changed its zone."""
from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.postgres import database, privileges
from sparklio_bi.superset import app
from sparklio_bi.warehouse import migrate, rollup_zone, rollups
from sparklio_bi.warehouse import seed as seeding

ZONE = "Asia/Seoul"
SEOUL = ZoneInfo(ZONE)
# Superset's default window on the daily charts, as the charts write it
WINDOW = 'DATEADD(DATETIME("today"), -7, day) : now'


def _set_server_zone(url: str, zone: str) -> None:
    """The server's default zone for every new session on this database (the bundle's own included)."""
    name = make_url(url).database
    with database.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"alter database \"{name}\" set timezone = '{zone}'")


@pytest.fixture(scope="module", params=["fresh install, server in Seoul", "zone changed, server in New York"])
def seoul(request, make_database, settings):
    """(owner URL, reader URL, settings in Seoul, what the zone change did) on a database of its own."""
    url = make_database("tz")
    fresh = request.param.startswith("fresh")
    _set_server_zone(url, ZONE if fresh else "America/New_York")
    in_seoul = dataclasses.replace(settings, timezone=ZONE)
    first = in_seoul if fresh else settings  # the other install started in UTC
    migrate.apply_source_ddl(url, first)
    seeding.seed(url, first, 0.5, 11)
    migrate.upgrade(url, first)
    rollups.refresh_in_transaction(url, first, full=True)
    # what `bootstrap` does on every run, now with SPARKLIO_TIMEZONE=Asia/Seoul
    reader = privileges.ensure_login(url, in_seoul)
    repaired = migrate.repair_views(url, in_seoul)
    changed = rollup_zone.ensure_timezone(url, in_seoul)
    return url, reader, in_seoul, (repaired, changed), fresh


def test_a_zone_change_rebuilds_what_cuts_days(seoul):
    _, _, _, (repaired, changed), fresh = seoul
    if fresh:
        assert (repaired, changed) == ([], None)
    else:
        assert changed and changed.startswith(f"reporting time zone UTC -> {ZONE}"), changed
        assert repaired == []  # no view names the zone since workflow_daily v4: the functions do


def test_the_reader_session_is_in_the_reporting_zone(seoul):
    _, reader, in_seoul, _, _ = seoul
    with database.connect(reader) as conn, conn.cursor() as cur:
        cur.execute("show timezone")
        assert cur.fetchone()[0] == ZONE
    assert privileges.missing_limits(reader, in_seoul) == []


def superset_since() -> datetime:
    """Where Superset's own date parser, in a process with the environment `serve` gives it,
    begins WINDOW."""
    code = (f"from superset.utils.date_parser import get_since_until; "
            f"print(get_since_until({WINDOW!r})[0].isoformat())")
    done = subprocess.run([sys.executable, "-c", code], env=app.environment(config.load()), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return datetime.fromisoformat(done.stdout.strip().splitlines()[-1])


def test_superset_today_is_midnight_in_the_reporting_zone(monkeypatch):
    monkeypatch.setenv("SPARKLIO_TIMEZONE", ZONE)
    monkeypatch.setenv("TZ", "America/New_York")  # whatever zone the shell had
    assert superset_since() == datetime.combine(datetime.now(SEOUL).date() - timedelta(days=7), datetime.min.time())


def test_daily_agent_executions_equal_the_reference_in_seoul(seoul):
    """The query Superset writes for a daily chart on agent_stats (its since literal, its day grain),
    run as the reader, equals counting agent_logs by Seoul day."""
    assert_daily_executions_equal_the_reference(*seoul[:2])


def assert_daily_executions_equal_the_reference(url: str, reader: str) -> None:
    since = datetime.combine(datetime.now(SEOUL).date() - timedelta(days=7), datetime.min.time())
    literal = since.strftime("%Y-%m-%d %H:%M:%S.%f")
    with database.connect(reader) as conn, conn.cursor() as cur:
        cur.execute("select date_trunc('day', period_start), sum(executions) from analytics.agent_stats "
                    "where period_start >= to_timestamp(%s, 'YYYY-MM-DD HH24:MI:SS.US') group by 1", (literal,))
        charted = {day.astimezone(SEOUL).date(): n for day, n in cur.fetchall()}
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select (created_at at time zone %s)::date, count(*) from public.agent_logs "
                    "where created_at >= %s::timestamp at time zone %s group by 1", (ZONE, since, ZONE))
        expected = dict(cur.fetchall())
    assert len(expected) >= 7 and charted == expected


def test_every_rollup_equals_its_raw_view_on_random_ranges_in_seoul(seoul):
    """tests/test_time_ranges.py's 200 random ranges, with days and hours cut in Seoul (per brand
    and over all brands: the timezone change rebuilt both)."""
    from tests.test_time_ranges import SEED, between_problems, random_ranges

    url = seoul[0]
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select now()")
        now = cur.fetchone()[0]
    rng = random.Random(SEED + 2)
    assert between_problems(url, random_ranges(rng, now, 200)) == []
    assert between_problems(url, random_ranges(rng, now, 40), rng) == []
    assert between_problems(url, random_ranges(rng, now, 200), coarsest="month") == []
    assert between_problems(url, random_ranges(rng, now, 200), all_brands=True) == []
    assert between_problems(url, random_ranges(rng, now, 100), coarsest="month", all_brands=True) == []


def test_workflow_daily_counts_seoul_days(seoul):
    url, reader, _, _, _ = seoul
    with database.connect(reader) as conn, conn.cursor() as cur:
        cur.execute("select day, sum(workflow_count), sum(completed_count), sum(failed_count) "
                    "from analytics.workflow_daily group by day having sum(workflow_count) > 0")
        rows = cur.fetchall()
    assert all(day.astimezone(SEOUL).time() == datetime.min.time() for day, *_ in rows)
    view = {day.astimezone(SEOUL).date(): tuple(counts) for day, *counts in rows}
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select (created_at at time zone %s)::date, count(*), count(*) filter (where status = 'completed'), "
                    "count(*) filter (where status = 'failed') from public.workflows group by 1", (ZONE,))
        expected = {day: tuple(counts) for day, *counts in cur.fetchall()}
    assert view == expected


def test_a_row_just_after_seoul_midnight_counts_on_the_new_day(seoul):
    """Rows on either side of Seoul's midnight (15:00 UTC), after an incremental refresh."""
    url, reader, in_seoul, _, _ = seoul
    midnight = datetime.combine(datetime.now(SEOUL).date() - timedelta(days=1), datetime.min.time(), SEOUL)
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select workflow_id, agent_name, model from public.agent_logs limit 1")
        workflow_id, agent, model = cur.fetchone()
        for at in (midnight - timedelta(minutes=1), midnight + timedelta(minutes=1)):
            cur.execute("insert into public.agent_logs (workflow_id, agent_name, model, status, latency_ms, created_at) "
                        "values (%s, %s, %s, 'success', 10, %s)", (workflow_id, agent, model, at))
    rollups.refresh_in_transaction(url, in_seoul)
    assert_daily_executions_equal_the_reference(url, reader)
