"""Which PostgreSQL the bundle talks to, and connections to it."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.config import Settings
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import embedded_pg


class DatabaseError(ExpectedError):
    """The database could not be reached or is not in the expected state."""


def analytics_url(settings: Settings, start: bool = True) -> str:
    """SQLAlchemy URL of the application database: DATABASE_URL, else the embedded server."""
    if settings.database_url:
        return _normalise(settings.database_url)
    if start:
        embedded_pg.start(settings)
    return embedded_pg.server_url(settings)


def superset_metadata_url(settings: Settings, start: bool = True) -> str:
    """Superset's own metadata database: SUPERSET_DATABASE_URL, else `superset` on the same server."""
    if settings.superset_database_url:
        return _normalise(settings.superset_database_url)
    url = make_url(analytics_url(settings, start=start))
    return url.set(database=config.SUPERSET_DATABASE).render_as_string(hide_password=False)


def ensure_database(url: str) -> bool:
    """Create the database `url` names on its server if missing; True when created."""
    parsed = make_url(url)
    server = parsed.set(database="postgres").render_as_string(hide_password=False)
    with connect(server, autocommit=True) as conn, conn.cursor() as cur:
        return embedded_pg.create_database_if_missing(cur, parsed.database)


def _normalise(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def libpq_dsn(url: str) -> str:
    """The same URL in the form psycopg2 accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def describe_failure(exc: Exception, url: str) -> str:
    """One line saying why a connection failed, without the password."""
    safe = make_url(url).render_as_string(hide_password=True)
    text = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    if "password authentication failed" in reason:
        reason = "password authentication failed"
    return f"cannot connect to {safe}: {reason}"


@contextlib.contextmanager
def connect(url: str, autocommit: bool = False) -> Iterator[psycopg2.extensions.connection]:
    """A psycopg2 connection; connection failures become one-line DatabaseErrors."""
    try:
        conn = psycopg2.connect(libpq_dsn(url), connect_timeout=5, application_name="sparklio-bi")
    except psycopg2.OperationalError as exc:
        raise DatabaseError(describe_failure(exc, url)) from None
    conn.autocommit = autocommit
    try:
        yield conn
        if not autocommit:
            conn.commit()
    except BaseException:
        if not autocommit:
            conn.rollback()
        raise
    finally:
        conn.close()


def engine(url: str) -> sa.engine.Engine:
    return sa.create_engine(url, connect_args={"connect_timeout": 5, "application_name": "sparklio-bi"})
