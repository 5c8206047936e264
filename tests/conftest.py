"""Shared fixtures: a real PostgreSQL (the bundle's embedded server, in a temporary data dir and
on a free port of its own, so the tests never touch the user's .data/) and seeded databases."""
from __future__ import annotations

import os
import socket
import uuid

import pytest
from sqlalchemy.engine import make_url

from sparklio_bi import config, database, embedded_pg, migrate

TEST_SCALE = 3.0
TEST_SEED = 7


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> config.Settings:
    """The embedded server of the test session; its settings are in os.environ for subprocesses."""
    data_dir = tmp_path_factory.mktemp("sparklio-data")
    for name in ("DATABASE_URL", "SUPERSET_DATABASE_URL", "REDIS_URL", "SPARKLIO_PG_PASSWORD",
                 "SUPERSET_ADMIN_PASSWORD", "ANALYTICS_SCHEMA", "SOURCE_SCHEMA"):
        os.environ.pop(name, None)
    os.environ.update(SPARKLIO_DATA_DIR=str(data_dir), SPARKLIO_PG_PORT=str(free_port()))
    current = config.load()
    embedded_pg.start(current)
    yield current
    embedded_pg.stop(current)


@pytest.fixture(scope="session")
def make_database(settings):
    """Factory: a new empty database on the test server; returns its SQLAlchemy URL."""
    created = []

    def make(prefix: str = "t") -> str:
        url = make_url(embedded_pg.server_url(settings)).set(database=f"{prefix}_{uuid.uuid4().hex[:8]}")
        text = url.render_as_string(hide_password=False)
        database.ensure_database(text)
        created.append(url.database)
        return text

    yield make
    with database.connect(embedded_pg.server_url(settings, "postgres"), autocommit=True) as conn:
        with conn.cursor() as cur:
            for name in created:
                cur.execute(f'drop database if exists "{name}" with (force)')


def seed_database(url: str, scale: float = TEST_SCALE, seed: int = TEST_SEED) -> None:
    """Source tables, demo data and the views at head."""
    from sparklio_bi import seed as seeding

    migrate.apply_source_ddl(url)
    seeding.seed(url, scale, seed)
    migrate.upgrade(url)


@pytest.fixture(scope="session")
def seeded_url(make_database) -> str:
    """One seeded database at head, shared by read-only tests."""
    url = make_database("seeded")
    seed_database(url)
    from sparklio_bi import collect

    collect.collect_once(url)
    return url
