"""`sparklio-bi doctor`: is this install whole? One check per line, `ok` or `FAIL` with the
command that fixes it. Reads only: nothing is started, repaired or written."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.ops import server
from sparklio_bi.postgres import database, embedded_pg, pooler, privileges, standby
from sparklio_bi.superset import app, assets, health, secret_key
from sparklio_bi.warehouse import indexes, migrate, rollups

MIN_FREE_BYTES = 1 * 2**30
MAX_STANDBY_BEHIND_BYTES = 64 * 2**20  # a standby further behind than this: the charts lag the primary
MAX_STANDBY_DELAY_SECONDS = 60  # ... or replaying more than this late (the primary's pg_stat_replication)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok    {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}" + (f" (fix: {self.fix})" if self.fix else "")


class Unreachable(Exception):
    """A check that cannot run because an earlier one failed."""


@dataclass
class Context:
    settings: config.Settings
    superset_url: str
    collect_interval: float
    _url: str | None = None

    def url(self) -> str:
        """The owner's URL, without starting anything."""
        if self._url is None:
            if self.settings.embedded and not embedded_pg.status(self.settings).running:
                raise Unreachable("the embedded PostgreSQL is not running")
            self._url = database.analytics_url(self.settings, start=False)
        return self._url


def check_database(ctx: Context) -> Check:
    try:
        with database.connect(ctx.url()) as conn, conn.cursor() as cur:
            cur.execute("select current_database()")
            name = cur.fetchone()[0]
    except Unreachable as exc:
        return Check("database", False, str(exc), "sparklio-bi db start")
    except database.DatabaseError as exc:
        return Check("database", False, str(exc), "start PostgreSQL or correct DATABASE_URL")
    return Check("database", True, f"{name} answers")


def check_migrations(ctx: Context) -> Check:
    current, head = migrate.current(ctx.url(), ctx.settings), migrate.head()
    if current != head:
        return Check("migrations", False, f"at {current or 'base'}, head is {head}", "sparklio-bi db upgrade")
    return Check("migrations", True, f"at head ({head})")


def check_views(ctx: Context) -> Check:
    drift = migrate.view_drift(ctx.url(), ctx.settings)
    if drift:
        return Check("views", False, "; ".join(drift), "sparklio-bi db upgrade (recreates them from sql/views/)")
    return Check("views", True, f"{len(migrate.head_versions())} views equal their files")


def check_indexes(ctx: Context) -> list[Check]:
    """The indexes on Sparklio's tables the views and the refresh rely on (on any database): one
    FAIL line per index missing or invalid, with the statement that builds it and what it serves."""
    survey = indexes.survey(ctx.url(), ctx.settings)
    schema = ctx.settings.source_schema
    wrong = [Check("indexes", False, f"{f.index.described(schema)} "
                   f"{'invalid (' + f.existing + ')' if f.state == 'invalid' else 'missing'}, for {f.index.serves}: "
                   f"{f.index.statement(schema)}", "sparklio-bi db indexes --create")
             for f in survey if f.state != "present"]
    return wrong or [Check("indexes", True, f"the {len(survey)} indexes the views and the refresh rely on are there")]


def check_reader(ctx: Context) -> Check:
    reader = privileges.reader_url(ctx.url(), ctx.settings)
    missing = privileges.missing_limits(reader, ctx.settings)
    if missing:
        return Check("reader role", False, f"{ctx.settings.reader_role}: {'; '.join(missing)}",
                     "sparklio-bi bootstrap (or the DBA's grants in README, Security model)")
    return Check("reader role", True, f"{ctx.settings.reader_role} logs in, read-only, "
                                      f"statement_timeout {ctx.settings.reader_statement_timeout}")


def check_reader_functions(ctx: Context) -> Check:
    """The reader role may not run a query string or act on another session (issue 31)."""
    risky = privileges.risky_functions(privileges.reader_url(ctx.url(), ctx.settings))
    if risky:
        return Check("functions", False, risky, "the DBA's SQL above (the bundle does it on its own server)")
    return Check("functions", True, "the reader role may call no function that runs a query string or acts on other sessions")


def check_reads(ctx: Context) -> Check:
    """Superset's analytics connection where it is not the primary (the embedded PgBouncer,
    SPARKLIO_READER_URL): it answers, with the reader's limits in force there."""
    url = privileges.superset_url(ctx.url(), ctx.settings)
    actual, direct = _superset_reads(ctx), make_url(privileges.reader_url(ctx.url(), ctx.settings))
    if actual and actual != _address(url):  # judged where Superset reads, not where it would
        if actual == _address(direct):
            return Check("reads", True, "Superset reads the primary directly (PgBouncer is installed since the last "
                                        "bootstrap: `sparklio-bi bootstrap` puts it in between)")
        return Check("reads", False, f"Superset reads {actual[0]}:{actual[1]}, the settings say "
                                     f"{_address(url)[0]}:{_address(url)[1]}", "sparklio-bi bootstrap")
    if url == privileges.reader_url(ctx.url(), ctx.settings):
        return Check("reads", True, "Superset reads the primary directly")
    pooled, target = pooler.enabled(ctx.settings), make_url(url)
    where = f"PgBouncer on 127.0.0.1:{ctx.settings.pooler_port}" if pooled else \
        f"SPARKLIO_READER_URL ({target.host}:{target.port})"
    missing = privileges.missing_limits(url, ctx.settings)
    if missing:
        fix = "sparklio-bi serve (it starts PgBouncer)" if pooled else "check the standby"
        return Check("reads", False, f"{where}: {'; '.join(missing)}", fix)
    behind = standby.lag(ctx.url(), url)
    if not behind.in_recovery:
        return Check("reads", True, f"Superset reads through {where}, the reader's limits in force")
    delay = f", replay lag {behind.replay_delay_seconds:.1f}s" if behind.replay_delay_seconds is not None else ""
    said = f"Superset reads a standby, {where}, {behind.behind_bytes:,} bytes of WAL behind the primary{delay}"
    if behind.behind_bytes > MAX_STANDBY_BEHIND_BYTES or (behind.replay_delay_seconds or 0) > MAX_STANDBY_DELAY_SECONDS:
        return Check("reads", False, said, "the charts lag the primary: check the standby's replication")
    return Check("reads", True, said)


def _address(url) -> tuple[str | None, int | None]:
    url = make_url(url)
    return url.host, url.port


def _superset_reads(ctx: Context) -> tuple[str | None, int | None] | None:
    """Host and port of Superset's analytics database as its metadata has it (None: unknown yet)."""
    try:
        with database.connect(database.superset_metadata_url(ctx.settings, start=False)) as conn, conn.cursor() as cur:
            cur.execute("select sqlalchemy_uri from dbs where database_name = %s", (assets.DATABASE_NAME,))
            found = cur.fetchone()
    except database.DatabaseError:
        return None
    return _address(found[0]) if found else None


def check_secret_key(ctx: Context) -> Check:
    metadata = database.superset_metadata_url(ctx.settings, start=False)
    key, where = secret_key.current_key(ctx.settings)
    problem = secret_key.problem(metadata, key, where)
    if problem:
        return Check("secret key", False, problem.split(". ")[0], "restore the key, or sparklio-bi recover-secret-key")
    if key is None:
        return Check("secret key", True, "none yet (made at the first start)")
    return Check("secret key", True, f"{where} decrypts Superset's stored passwords")


def check_superset(ctx: Context) -> Check:
    import requests

    try:
        response = requests.get(f"{ctx.superset_url}/health", timeout=10)
    except requests.RequestException as exc:
        return Check("superset", False, f"{ctx.superset_url} does not answer ({type(exc).__name__})",
                     "sparklio-bi serve")
    if response.status_code != 200:
        said = response.text.strip().splitlines()[0][:300] if response.text.strip() else ""
        return Check("superset", False, f"{ctx.superset_url}/health answered {response.status_code}"
                     + (f": {said}" if said else ""), "see the server's log")
    return Check("superset", True, f"{ctx.superset_url} healthy")


def check_redis(ctx: Context) -> list[Check]:
    """With REDIS_URL: Redis answers a PING (Superset's caches, login counters and Celery need it)."""
    if not ctx.settings.redis_url:
        return []
    import redis

    where = health.redis_address(ctx.settings.redis_url)
    try:
        client = redis.Redis.from_url(ctx.settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        found = client.info("server").get("redis_version", "?")
    except redis.RedisError as exc:
        return [Check("redis", False, f"Redis at {where} does not answer ({exc})",
                      "start Redis or correct REDIS_URL (Superset's caches, login counters and Celery use it)")]
    return [Check("redis", True, f"Redis {found} at {where} answers")]


def check_assets(ctx: Context) -> Check:
    """Export what Superset holds into a scratch folder and compare with assets/."""
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / "assets"
        with app.app_context(ctx.settings):
            assets.export_bundle(exported, ctx.settings)
        ours, theirs = assets.read_bundle(assets.ASSETS_DIR), assets.read_bundle(exported)
    differ = sorted(rel for rel in set(ours) | set(theirs) if ours.get(rel) != theirs.get(rel))
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        return Check("assets", False, f"Superset differs from assets/ in {shown}",
                     "sparklio-bi assets export (keep Superset's) or sparklio-bi assets import (keep git's)")
    return Check("assets", True, f"Superset holds exactly assets/ ({len(ours)} files)")


def check_collector(ctx: Context) -> Check:
    with database.connect(ctx.url()) as conn, conn.cursor() as cur:
        cur.execute(f"select extract(epoch from now() - max(sampled_at)) from {ctx.settings.analytics_schema}.system_samples")
        age = cur.fetchone()[0]
    limit = 2 * ctx.collect_interval
    if age is None or age > limit:
        seen = "no sample yet" if age is None else f"last sample {age:.0f}s ago"
        return Check("collector", False, f"{seen} (expected within {limit:g}s)",
                     f"sparklio-bi collect --interval {ctx.collect_interval:g} (sparklio-bi serve runs it)")
    return Check("collector", True, f"last sample {age:.0f}s ago")


ROLLUP_STALE_SECONDS = 120  # at least: four of the refresher's intervals (SPARKLIO_REFRESH_SECONDS, 30 s) while serving


def check_rollups(ctx: Context) -> Check:
    """The rollups' refresher: a late or updated row reaches the charts only through it."""
    with database.connect(ctx.url()) as conn, conn.cursor() as cur:
        cur.execute(f"select min(rollup), extract(epoch from now() - min(refreshed_at)), count(*) "
                    f"from {ctx.settings.analytics_schema}.rollup_state")
        _, age, count = cur.fetchone()
    stale = max(ROLLUP_STALE_SECONDS, 4 * ctx.settings.refresh_seconds)
    if not count or age is None or age > stale:
        seen = "never refreshed" if age is None else f"last refreshed {age:.0f}s ago"
        return Check("rollups", False, f"{seen} (expected within {stale:g}s while serving)",
                     f"sparklio-bi rollups refresh --every {ctx.settings.refresh_seconds:g} (sparklio-bi serve runs it)")
    return Check("rollups", True, f"{count} rollups, last refreshed {age:.0f}s ago")


def check_rollup_content(ctx: Context) -> Check:
    """The rollups' daily counts of the last days against their raw views, in one snapshot."""
    with database.connect(ctx.url()) as conn:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            drift = rollups.drifted_days(cur, ctx.settings, rollups.VERIFY_DAYS)
    if drift:
        shown = "; ".join(f"{name}: {', '.join(f'{day:%Y-%m-%d}' for day in days)}" for name, days in drift.items())
        return Check("rollup content", False, f"counts differ from the raw views ({shown}; a first of the month: its month)",
                     "sparklio-bi rollups refresh (recomputes the days that differ)")
    return Check("rollup content", True, f"the last {rollups.VERIFY_DAYS} days' counts equal the raw views'")


def check_serve(ctx: Context) -> Check:
    """What `sparklio-bi serve` says of its children: up, restarted, or down awaiting a restart."""
    from datetime import datetime

    running = server.serve_status(ctx.settings.data_dir)
    if not running:
        return Check("serve", True, "no sparklio-bi serve on this data dir (docker-compose runs each as a service)")
    problems, notes = [], []
    for serving in running:
        for child in serving["children"]:
            when = datetime.fromtimestamp(child["last_exit_at"]).strftime("%H:%M:%S") if child["last_exit_at"] else ""
            if not child["up"]:
                problems.append(f"{child['name']} is down (status {child['last_exit']} at {when}), restarting")
            elif child["restarts"]:
                notes.append(f"{child['name']} restarted {child['restarts']}x (last stop: status "
                             f"{child['last_exit']} at {when})")
    ports = ", ".join(f"port {serving['port']} (pid {serving['pid']})" for serving in running)
    if problems:
        return Check("serve", False, f"{ports}: " + "; ".join(problems + notes),
                     "see serve's output for why the child stops")
    names = sorted({child["name"] for serving in running for child in serving["children"]})
    return Check("serve", True, f"{ports}: {', '.join(names)} up" + (f"; {'; '.join(notes)}" if notes else ""))


def check_alerts(ctx: Context) -> Check:
    """Alerts & Reports: off without Redis (they need Celery), else whether a serve of this data
    dir runs Superset's Celery worker and beat (docker-compose runs them as services)."""
    if not ctx.settings.redis_url:
        return Check("alerts", True, "off: no REDIS_URL (Superset's Alerts & Reports need Celery on Redis)")
    serving = server.serve_status(ctx.settings.data_dir)
    running = {child["name"] for serve in serving for child in serve["children"] if child["up"]}
    if not serving:
        return Check("alerts", True, "REDIS_URL set; no serve here runs Celery (docker-compose runs it as services)")
    missing = sorted({"celery-worker", "celery-beat"} - running)
    if missing:
        return Check("alerts", False, f"REDIS_URL set but {' and '.join(missing)} not running",
                     "sparklio-bi serve (one node with --celery) runs them")
    return Check("alerts", True, "on: Superset's Celery worker and beat run beside serve")


def check_disk(ctx: Context) -> Check:
    existing = next(p for p in (ctx.settings.data_dir, *ctx.settings.data_dir.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        return Check("disk", False, f"{free / 2**30:.1f} GiB free under {existing}", "free some space")
    return Check("disk", True, f"{free / 2**30:.0f} GiB free under {existing}")


CHECKS: dict[str, Callable[[Context], Check | list[Check]]] = {
    "database": check_database, "migrations": check_migrations, "views": check_views, "indexes": check_indexes,
    "reader": check_reader, "reader-functions": check_reader_functions, "reads": check_reads,
    "secret-key": check_secret_key, "superset": check_superset, "redis": check_redis, "assets": check_assets,
    "collector": check_collector, "rollups": check_rollups,
    "rollup-content": check_rollup_content, "serve": check_serve, "alerts": check_alerts, "disk": check_disk,
}
NEED_DATABASE = {"migrations", "views", "indexes", "reader", "reader-functions", "reads",
                 "collector", "rollups", "rollup-content", "assets"}


def run(settings: config.Settings, superset_url: str, collect_interval: float,
        skip: tuple[str, ...] = ()) -> list[Check]:
    """Every check not skipped, in order; those that need the database are skipped with a FAIL
    when it is down, and any unexpected error is a FAIL naming it."""
    ctx, results = Context(settings, superset_url, collect_interval), []
    for name, check in CHECKS.items():
        if name in skip:
            continue
        failed = {result.name for result in results if not result.ok}
        if name in NEED_DATABASE and "database" in failed or name == "assets" and "secret key" in failed:
            why = "the database is down" if "database" in failed else "the secret key does not match"
            results.append(Check(name, False, f"not checked: {why}"))
            continue
        try:
            found = check(ctx)
            results += found if isinstance(found, list) else [found]
        except (Exception, SystemExit) as exc:  # a check that cannot run is a finding, not a crash
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            results.append(Check(name, False, detail))
    return results
