"""The indexes on Sparklio's tables that the views, the live part of the rollups and the refresh
rely on, named in one place with what each one serves. The demo's reference DDL creates them; on
Sparklio's own database (DATABASE_URL) they are the application's to have, so `doctor` checks
them and `sparklio-bi db indexes --create` builds the missing ones concurrently (never in a
transaction, never locking the application's writes). An index is found by what it indexes (its
table, leading columns and predicate), not by its name."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database


class IndexBuildError(ExpectedError):
    """A concurrent index build failed (its invalid leftover was dropped)."""


@dataclass(frozen=True)
class Index:
    name: str  # the name `--create` gives it
    table: str
    columns: tuple[str, ...]
    serves: str  # what is slow without it (measured at 10M agent_logs: issue 16)
    where: str = ""  # a partial index's predicate, as written

    def described(self, schema: str) -> str:
        """What it indexes: `public.agent_logs (created_at) where status <> 'success'`."""
        return f"{schema}.{self.table} ({', '.join(self.columns)})" + (f" where {self.where}" if self.where else "")

    def statement(self, schema: str) -> str:
        return f"create index concurrently if not exists {self.name} on {self.described(schema)}"


INDEXES = (
    Index("agent_logs_created_at_idx", "agent_logs", ("created_at",),
          "charts 2.x, 8.x over a range (agent_stats, errors: the live part and the range ends), the refresh"),
    Index("agent_logs_failed_idx", "agent_logs", ("created_at",),
          "chart 8.3 latest 20 failures, the refresh's recent failures", where="status <> 'success'"),
    Index("agent_logs_workflow_id_idx", "agent_logs", ("workflow_id",), "the brand of each execution (agent_logs view)"),
    Index("router_logs_created_at_idx", "router_logs", ("created_at",), "charts 3.x over a range, the refresh"),
    Index("router_logs_workflow_id_idx", "router_logs", ("workflow_id",), "router_logs reached through their workflow"),
    Index("workflows_created_at_idx", "workflows", ("created_at",), "charts 1.x, 4.3 over a range, the refresh"),
    Index("workflows_project_id_idx", "workflows", ("project_id",), "the brand of each workflow"),
    Index("assets_created_at_idx", "assets", ("created_at",), "charts 4.2, 7.x over a range, the refresh"),
    Index("assets_project_id_idx", "assets", ("project_id",), "the brand of each asset"),
    Index("projects_created_at_idx", "projects", ("created_at",), "chart 6.1's partial days, charts 4.1 over a range"),
    Index("projects_brand_id_idx", "projects", ("brand_id",), "projects per brand (4.1), a brand's rows"),
    Index("projects_user_id_idx", "projects", ("user_id",), "projects per user (6.2)"),
)

_DEFINITION = re.compile(r"USING btree \((?P<columns>[^)]*)\)(?: WHERE \((?P<where>.*)\))?$")


def _normal(predicate: str) -> str:
    """A predicate as PostgreSQL prints it, without casts, parentheses and case."""
    return re.sub(r"::[a-z ]+|[()\s]", "", predicate.lower())


@dataclass(frozen=True)
class Found:
    index: Index
    state: str  # "present", "missing" or "invalid" (a concurrent build that failed or is running)
    existing: str | None = None  # the name of the index found (or of the invalid one)


def survey(url: str, settings: config.Settings) -> list[Found]:
    """Each index of INDEXES: present (a valid btree on the same leading columns with the same
    predicate, whatever its name), invalid, or missing."""
    schema = settings.source_schema
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("""
            select t.relname, i.relname, x.indisvalid, pg_get_indexdef(x.indexrelid)
            from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
            join pg_namespace n on n.oid = t.relnamespace where n.nspname = %s""", (schema,))
        existing = cur.fetchall()
    out = []
    for index in INDEXES:
        state, name = "missing", None
        for table, found_name, valid, definition in existing:
            match = _DEFINITION.search(definition)
            if table != index.table or not match:
                continue
            columns = tuple(c.strip().strip('"') for c in match["columns"].split(","))
            same = columns[:len(index.columns)] == index.columns and \
                _normal(match["where"] or "") == _normal(index.where)
            if same and valid:
                state, name = "present", found_name
                break
            if same or found_name == index.name:
                state, name = "invalid", found_name
        out.append(Found(index, state, name))
    return out


def create_missing(url: str, settings: config.Settings, say: Callable[[str], None]) -> list[str]:
    """Build every missing index concurrently, one at a time, outside any transaction (the
    application keeps writing); an invalid leftover of the bundle's own name is dropped first (one
    of another name may be the application's build still running: an error names it), and a build
    that fails leaves none. Returns the names built."""
    schema, built = settings.source_schema, []
    for found in survey(url, settings):
        if found.state == "present":
            continue
        if found.state == "invalid" and found.existing != found.index.name:
            raise IndexBuildError(f"{schema}.{found.existing} is invalid (a concurrent build that failed, or one "
                                  f"still running): wait for it, or drop it (drop index concurrently "
                                  f"{schema}.{found.existing}) and run this again")
        with database.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            if found.state == "invalid":
                say(f"dropping the invalid index {found.existing} (a concurrent build of ours that failed)")
                cur.execute(f"drop index concurrently if exists {schema}.{found.existing}")
            say(f"building {found.index.name} on {found.index.table} ({found.index.serves})")
            try:
                cur.execute(found.index.statement(schema))
            except psycopg2.Error as exc:
                cur.execute(f"drop index concurrently if exists {schema}.{found.index.name}")
                raise IndexBuildError(f"building {found.index.name} failed (nothing left behind): "
                                  f"{' '.join(str(exc).split())}") from None
        built.append(found.index.name)
    return built
