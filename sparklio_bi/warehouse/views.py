"""The versioned analytics views: one SQL file per view version under sql/views/.

A file `sql/views/<view>__v<N>.sql` holds a documented header (grain, columns) and the view's
select statement, with `${analytics}` and `${source}` standing for the configured schemas.
A released file is never edited: a change is a new file plus a migration that names it,
so an old migration always recreates exactly the definition it created.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from sparklio_bi import config

SQL_DIR = config.PROJECT_ROOT / "sql"
VIEWS_DIR = SQL_DIR / "views"
OWNED_DIR = SQL_DIR / "owned"
SOURCE_DDL = SQL_DIR / "source" / "app_tables.sql"
FILE_NAME = re.compile(r"^(?P<view>[a-z_]+)__v(?P<version>\d+)\.sql$")
COLUMN_LINE = re.compile(r"^--\s{2,}(?P<name>[a-z_][a-z0-9_]*)\s+(?P<type>[a-z ]+?)(?:\s{2,}.*)?$")
SOURCE_TABLES = ("users", "brands", "projects", "workflows", "agent_logs", "router_logs", "assets")


RELEASED = SQL_DIR / "RELEASED.sha256"  # `sha256sum` lines of every released view and bundle file


def released_problems() -> list[str]:
    """Released SQL files that changed, went missing or were never recorded (one line each):
    a released version is never edited, so a migration always recreates what it created."""
    recorded = {}
    for line in RELEASED.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name.lstrip("*")] = digest
    present = {path.relative_to(SQL_DIR).as_posix(): path for folder in (VIEWS_DIR, OWNED_DIR)
               for path in sorted(folder.glob("*.sql"))}
    problems = []
    for name, digest in sorted(recorded.items()):
        path = present.get(name)
        if path is None:
            problems.append(f"sql/{name}: released, but the file is gone (a migration still names it)")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            match = FILE_NAME.match(path.name)
            fix = (f"add {match['view']}__v{int(match['version']) + 1}.sql and a migration instead" if match
                   else "add a new version and a migration instead")
            problems.append(f"sql/{name}: changed after its release: restore it and {fix}")
    for name in sorted(set(present) - set(recorded)):
        problems.append(f"sql/{name}: not in sql/RELEASED.sha256: once its migration is written, release it "
                        f"with `cd sql && sha256sum {name} >> RELEASED.sha256`")
    return problems


@dataclass(frozen=True)
class Column:
    name: str
    type: str


def view_file(view: str, version: int) -> Path:
    """Path of one view version's SQL file."""
    return VIEWS_DIR / f"{view}__v{version}.sql"


def render(path: Path, settings: config.Settings) -> str:
    """The file's SQL with the configured schema names filled in."""
    return Template(path.read_text()).substitute(analytics=settings.analytics_schema,
                                                 source=settings.source_schema, timezone=settings.timezone)


def all_versions() -> dict[str, list[int]]:
    """Every view and its released versions, oldest first."""
    found: dict[str, list[int]] = {}
    for path in sorted(VIEWS_DIR.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if match:
            found.setdefault(match["view"], []).append(int(match["version"]))
    return {view: sorted(versions) for view, versions in found.items()}


def documented_columns(view: str, version: int) -> list[Column]:
    """The columns a view version's header documents, in order."""
    lines = view_file(view, version).read_text().splitlines()
    start = lines.index("-- columns:") + 1
    columns = []
    for line in lines[start:]:
        match = COLUMN_LINE.match(line)
        if not match:
            break
        columns.append(Column(match["name"], match["type"].strip()))
    return columns


def time_column(view: str, version: int) -> str | None:
    """The column the header marks "(time column)", if any."""
    for line in view_file(view, version).read_text().splitlines():
        match = COLUMN_LINE.match(line)
        if match and "(time column)" in line:
            return match["name"]
    return None


def create_view_sql(view: str, version: int, settings: config.Settings) -> str:
    """`create view` statement of one view version."""
    body = render(view_file(view, version), settings)
    return f"create view {settings.analytics_schema}.{view} as\n{body}"


def drop_view_sql(view: str, settings: config.Settings) -> str:
    return f"drop view if exists {settings.analytics_schema}.{view}"
