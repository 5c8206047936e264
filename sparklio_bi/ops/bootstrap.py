"""`sparklio-bi bootstrap`: everything from an empty machine to Superset serving the dashboards,
in numbered steps; every step is idempotent, so a second run changes nothing."""
from __future__ import annotations

import time
from collections.abc import Callable

from sparklio_bi import config
from sparklio_bi.postgres import database, privileges
from sparklio_bi.superset import app, assets, internals, roles, setup
from sparklio_bi.warehouse import collect, migrate, rollup_zone


def source_row_count(url: str, settings: config.Settings) -> int:
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select count(*) from {settings.source_schema}.agent_logs")
        return cur.fetchone()[0]


def data_layer(settings: config.Settings, step: Callable[[str], None], seed_job: Callable[[str], dict],
               reseed: bool = False, demo: bool = True) -> str:
    """Database, source tables and demo data (demo mode only), migrations, the read-only role,
    one system sample; returns the read-only role's URL (what Superset connects with).
    Outside demo mode the application's tables and rows are never touched."""
    step("1/7 PostgreSQL: " + ("DATABASE_URL" if settings.database_url else f"embedded server in {settings.pg_dir}"))
    url = database.analytics_url(settings)  # starts the embedded server when there is no DATABASE_URL
    migrate.preflight(url, settings, demo)  # everything checked before anything is created
    database.ensure_database(database.superset_metadata_url(settings, start=False))

    step("2/7 source tables")
    if demo:
        created = migrate.apply_source_ddl(url, settings)
        step("    reference DDL applied" if created else "    present, left as they are")
        if settings.embedded and not created:  # the embedded server is the bundle's own (older installs lack the mark)
            with database.connect(url) as conn, conn.cursor() as cur:
                migrate.mark_demo(cur, settings)
    else:
        step("    the application's own (not demo mode: never created or changed)")

    step(f"3/7 analytics views: migrating to {migrate.head()}")
    migrate.upgrade(url, settings)
    for line in migrate.repair_views(url, settings):
        step(f"    repaired {line}")
    changed_zone = rollup_zone.ensure_timezone(url, settings)
    if changed_zone:
        step(f"    {changed_zone}")
    reader_url = privileges.ensure_login(url, settings, step)
    step(f"    Superset reads as {settings.reader_role} (read-only, statement_timeout "
         f"{settings.reader_statement_timeout})")

    if not demo:
        step("4/7 demo data: skipped (not demo mode)")
    elif reseed or source_row_count(url, settings) == 0:
        step("4/7 demo data")
        counts = seed_job(url)
        step("    " + ", ".join(f"{table} {n:,}" for table, n in counts.items()))
    else:
        step("4/7 demo data: source tables have rows, kept (use --reseed to replace them)")
    collect.collect_once(url, settings)
    return reader_url


def check_secrets() -> None:
    """Refuse weak or (outside demo mode) missing secrets before anything is created."""
    for problem in (config.secret_key_problem(), config.admin_password_problem()):
        if problem:
            raise config.ConfigError(problem)


def superset_layer(settings: config.Settings, step: Callable[[str], None], url: str) -> None:
    """Superset metadata, roles, admin user and the assets; `url` is what Superset connects with."""
    with app.app_context():
        internals.require_unchanged()  # before Superset's metadata is touched
        step("5/7 Superset metadata database")
        started = time.monotonic()
        setup.upgrade_metadata()
        setup.sync_roles()
        step(f"    migrated, roles synced ({time.monotonic() - started:.0f}s)")

        username, password, generated = setup.admin_credentials(settings)
        step("6/7 admin user")
        where = f" (kept in {setup.admin_password_file(settings)})" if generated else ""
        if setup.ensure_admin(username, password, settings.admin_email):
            shown = f"password {password}" if generated else "password from SUPERSET_ADMIN_PASSWORD"
            step(f"    created {username!r}, {shown}{where}")
        elif generated:  # the kept password file was lost: the new one must be the one that works
            setup.reset_admin_password(username, password)
            step(f"    {username!r} exists but its password file was missing: password reset to {password}{where}")
        else:
            step(f"    {username!r} exists, unchanged")

        step("7/7 dashboards: importing assets/")
        counts = assets.import_bundle(assets.ASSETS_DIR, url, settings.admin_username)
        step("    " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
        step("    roles " + ", ".join(roles.sync()) + " and brand rules synced")
