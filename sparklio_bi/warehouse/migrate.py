"""Thin layer over Alembic for the analytics views, plus the checks that keep bad input out."""
from __future__ import annotations

import psycopg2
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database, privileges
from sparklio_bi.warehouse import views


class MigrationError(ExpectedError):
    """A migration could not run; nothing was changed."""


def alembic_config(url: str) -> Config:
    cfg = Config(str(config.PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    return cfg


def missing_source_tables(url: str, settings: config.Settings) -> list[str]:
    """Source tables the views need that the database does not have."""
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select table_name from information_schema.tables where table_schema = %s",
                    (settings.source_schema,))
        present = {row[0] for row in cur.fetchall()}
    return [table for table in views.SOURCE_TABLES if table not in present]


def preflight(url: str, settings: config.Settings, demo: bool) -> None:
    """What bootstrap needs, checked before it creates anything: the database answers, and
    outside demo mode it holds Sparklio's tables (demo mode creates them)."""
    with database.connect(url):
        pass
    if not demo:
        missing = missing_source_tables(url, settings)
        if missing:
            raise MigrationError(f"the database has no source tables {', '.join(missing)} in schema "
                                 f"{settings.source_schema!r}: point DATABASE_URL at Sparklio's database, "
                                 "or pass --demo to create demo tables there")


def _check_revision(cfg: Config, revision: str) -> None:
    if revision in ("head", "base", "heads") or revision.startswith(("+", "-")):
        return
    scripts = ScriptDirectory.from_config(cfg)
    try:
        found = scripts.get_revision(revision)
    except CommandError:
        found = None
    if found is None:
        known = ", ".join(s.revision for s in scripts.walk_revisions())
        raise MigrationError(f"unknown revision {revision!r} (known: {known}, head, base)")


def _run(fn, url: str, *args) -> None:
    try:
        fn(*args)
    except (CommandError, psycopg2.Error, RuntimeError) as exc:
        raise MigrationError(str(exc).strip().splitlines()[0]) from None
    except Exception as exc:  # sqlalchemy wraps driver errors
        orig = getattr(exc, "orig", None)
        if orig is None:
            raise
        raise MigrationError(database.describe_failure(exc, url) if "connect" in str(orig) else
                             str(orig).strip().splitlines()[0]) from None


def upgrade(url: str, settings: config.Settings, revision: str = "head") -> None:
    """Migrate the views up to `revision`, in one transaction."""
    cfg = alembic_config(url)
    _check_revision(cfg, revision)
    missing = missing_source_tables(url, settings)
    if missing:
        raise MigrationError(f"the database has no source tables {', '.join(missing)} in schema "
                             f"{settings.source_schema!r}: point DATABASE_URL at Sparklio's database "
                             "or run `sparklio-bi db apply-source-ddl`")
    cfg.attributes["settings"] = settings  # the migrations read these, not the environment again
    _run(command.upgrade, url, cfg, revision)


def downgrade(url: str, settings: config.Settings, revision: str = "-1", drop_data: bool = False) -> None:
    """Migrate the views down to `revision` (default: one step), in one transaction; a step that
    would destroy collected data refuses unless `drop_data`."""
    cfg = alembic_config(url)
    cfg.attributes["drop_data"] = drop_data
    cfg.attributes["settings"] = settings
    _check_revision(cfg, revision)
    with database.connect(url):  # fail fast, with one line, when the server is unreachable
        pass
    _run(command.downgrade, url, cfg, revision)


def head_versions() -> dict[str, int]:
    """Each view and the version head holds: its newest file."""
    return {view: versions[-1] for view, versions in views.all_versions().items()}


def view_drift(url: str, settings: config.Settings) -> list[str]:
    """At head, each view that is missing or differs from its file: "analytics.x was missing"."""
    if current(url, settings) != head():
        return []
    with database.connect(url) as conn, conn.cursor() as cur:
        found = [(view, _view_drift(cur, settings, view, version)) for view, version in sorted(head_versions().items())]
    return [f"{settings.analytics_schema}.{view} {problem}" for view, problem in found if problem]


def repair_views(url: str, settings: config.Settings) -> list[str]:
    """At head, every view must exist and equal its file: a view dropped or edited behind the
    bundle's back is recreated from its file (and granted to the reader), in one transaction.
    A view built on a changed one (errors on agent_logs, workflow_daily on workflow_stats) is
    dropped with it and recreated after it. Returns one line per view repaired."""
    from psycopg2 import errors

    if current(url, settings) != head():
        return []
    wanted = dict(sorted(head_versions().items()))
    with database.connect(url) as conn, conn.cursor() as cur:
        problems = {view: _view_drift(cur, settings, view, version) for view, version in wanted.items()}
        for view, problem in problems.items():
            if problem and problem != "was missing":
                cur.execute(views.drop_view_sql(view, settings) + " cascade")
        missing = [view for view in wanted if not _exists(cur, settings, view)]
        recreated: list[str] = []
        while missing:  # in passes: a view is created once the views it reads exist
            created = []
            for view in missing:
                cur.execute("savepoint create_view")
                try:
                    cur.execute(views.create_view_sql(view, wanted[view], settings))
                except errors.UndefinedTable:
                    cur.execute("rollback to savepoint create_view")
                    continue
                cur.execute("release savepoint create_view")
                created.append(view)
            if not created:
                raise database.DatabaseError("cannot recreate " + ", ".join(missing) + ": they read relations that "
                                             "are missing (run `sparklio-bi db downgrade` and `db upgrade`)")
            recreated += created
            missing = [view for view in missing if view not in created]
        cur.execute("select 1 from pg_roles where rolname = %s", (settings.reader_role,))
        if cur.fetchone():
            for view in recreated:
                cur.execute(privileges.grant_select_sql(settings, view))
    return [f"{settings.analytics_schema}.{view} {problems[view] or 'was dropped with a view it reads'}: recreated "
            f"from {views.view_file(view, wanted[view]).relative_to(config.PROJECT_ROOT)}" for view in sorted(recreated)]


def _exists(cur, settings: config.Settings, view: str) -> bool:
    cur.execute("select to_regclass(%s)", (f"{settings.analytics_schema}.{view}",))
    return cur.fetchone()[0] is not None


def _view_drift(cur, settings: config.Settings, view: str, version: int) -> str | None:
    """Why the database's view differs from its file ('was missing', 'differed'), or None."""
    name = f"{settings.analytics_schema}.{view}"
    cur.execute("select pg_get_viewdef(to_regclass(%s))", (name,))
    actual = cur.fetchone()[0]
    if actual is None:
        return "was missing"
    cur.execute("savepoint expected")  # the file's definition, as PostgreSQL prints it, then gone
    cur.execute("create schema sparklio_expected")
    body = views.render(views.view_file(view, version), settings)
    cur.execute(f"create view sparklio_expected.{view} as\n{body}")
    cur.execute("select pg_get_viewdef(%s::regclass)", (f"sparklio_expected.{view}",))
    expected = cur.fetchone()[0]
    cur.execute("rollback to savepoint expected")
    return None if actual == expected else "differed from its file"


def current(url: str, settings: config.Settings) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (f"{settings.analytics_schema}.alembic_version",))
        if cur.fetchone()[0] is None:
            return None
        cur.execute(f"select version_num from {settings.analytics_schema}.alembic_version")
        row = cur.fetchone()
    return row[0] if row else None


def history() -> list[tuple[str, str | None, str]]:
    """(revision, down_revision, first docstring line) from oldest to newest; needs no database."""
    scripts = ScriptDirectory.from_config(alembic_config(""))
    rows = [(s.revision, s.down_revision, (s.doc or "").splitlines()[0]) for s in scripts.walk_revisions()]
    return list(reversed(rows))


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def apply_source_ddl(url: str, settings: config.Settings) -> bool:
    """Create Sparklio's reference tables in an empty source schema; False if they already exist."""
    missing = missing_source_tables(url, settings)
    if not missing:
        return False
    if len(missing) != len(views.SOURCE_TABLES):
        raise MigrationError(f"schema {settings.source_schema!r} has some source tables but not "
                             f"{', '.join(missing)}: refusing to mix the reference DDL into it")
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"create schema if not exists {settings.source_schema}")
        cur.execute(views.render(views.SOURCE_DDL, settings))
        mark_demo(cur, settings)
    return True


# Set on the source tables the bundle created itself: only those may be replaced by demo data.
DEMO_MARKER = "sparklio-bi demo data (reference DDL): `sparklio-bi seed` may replace these rows"


def mark_demo(cur, settings: config.Settings) -> None:
    """Mark the source tables as the bundle's own demo tables."""
    cur.execute(f"comment on table {settings.source_schema}.agent_logs is %s", (DEMO_MARKER,))


def is_demo(url: str, settings: config.Settings) -> bool:
    """True when the source tables carry the bundle's demo marker."""
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select obj_description(to_regclass(%s), 'pg_class')", (f"{settings.source_schema}.agent_logs",))
        row = cur.fetchone()
    return bool(row) and row[0] == DEMO_MARKER
