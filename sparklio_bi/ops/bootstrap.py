"""`sparklio-bi bootstrap`: everything from an empty machine to Superset serving the dashboards,
in numbered steps; every step is idempotent, so a second run changes nothing."""
from __future__ import annotations

import json
import time
from collections.abc import Callable

from sparklio_bi import config
from sparklio_bi.postgres import database, pooler, privileges
from sparklio_bi.superset import app, assets, internals, roles, setup
from sparklio_bi.superset.alerts import sync as alerts_sync
from sparklio_bi.warehouse import collect, migrate, rollup_zone

STEPS = 7


class Progress:
    """Where bootstrap says what it does: each numbered step (its title, and for some an outcome:
    demo data "seeding", "kept" or "skipped") and notes under it, as lines for a person
    ("==> 4/7 demo data", "==>     users 2,272, ...") or, with `json_lines`, one JSON object a line
    for a program (`sparklio-bi bench` reads them: {"event": "step", "step": 4, "of": 7, "title":
    "demo data", "outcome": "seeding", "detail": null, "seconds": 3.2}; a note's own fields, such
    as the seeded "rows", ride along)."""

    def __init__(self, write: Callable[[str], None], json_lines: bool = False) -> None:
        self._write, self._json = write, json_lines
        self._started = time.monotonic()
        self._step = 0

    def step(self, number: int, title: str, outcome: str | None = None, detail: str | None = None) -> None:
        self._step = number
        if self._json:
            self._event("step", step=number, of=STEPS, title=title, outcome=outcome, detail=detail)
        else:
            self._write(f"{number}/{STEPS} {title}" + (f": {detail}" if detail else ""))

    def note(self, text: str, **data) -> None:
        """A line under the current step (a few spaces in: a detail of it), with `data` for programs."""
        if self._json:
            self._event("note", step=self._step, text=text.strip(), **data)
        else:
            self._write(f"    {text.strip()}")

    def ready(self) -> None:
        if self._json:
            self._event("ready")
        else:
            self._write(f"ready in {time.monotonic() - self._started:.0f}s")

    def _event(self, event: str, **data) -> None:
        self._write(json.dumps({"event": event, **data, "seconds": round(time.monotonic() - self._started, 3)}))


def source_row_count(url: str, settings: config.Settings) -> int:
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select count(*) from {settings.source_schema}.agent_logs")
        return cur.fetchone()[0]


def data_layer(settings: config.Settings, progress: Progress, seed_job: Callable[[str], dict],
               reseed: bool = False, demo: bool = True) -> str:
    """Database, source tables and demo data (demo mode only), migrations, the read-only role,
    one system sample; returns the analytics database's URL (the owner's, on the primary).
    Outside demo mode the application's tables and rows are never touched."""
    progress.step(1, "PostgreSQL", detail="DATABASE_URL" if settings.database_url else f"embedded server in {settings.pg_dir}")
    url = database.analytics_url(settings)  # starts the embedded server when there is no DATABASE_URL
    migrate.preflight(url, settings, demo)  # everything checked before anything is created
    database.ensure_database(database.superset_metadata_url(settings, start=False))

    progress.step(2, "source tables")
    if demo:
        created = migrate.apply_source_ddl(url, settings)
        progress.note("reference DDL applied" if created else "present, left as they are")
        if settings.embedded and not created:  # the embedded server is the bundle's own (older installs lack the mark)
            with database.connect(url) as conn, conn.cursor() as cur:
                migrate.mark_demo(cur, settings)
    else:
        progress.note("the application's own (not demo mode: never created or changed)")

    progress.step(3, "analytics views", detail=f"migrating to {migrate.head()}")
    migrate.upgrade(url, settings)
    for line in migrate.repair_views(url, settings):
        progress.note(f"repaired {line}")
    changed_zone = rollup_zone.ensure_timezone(url, settings)
    if changed_zone:
        progress.note(changed_zone)
    reader = privileges.ensure_login(url, settings, progress.note)
    risky = privileges.risky_functions(reader)
    if risky:  # a DATABASE_URL server: its PUBLIC grants are the DBA's to change, not the bundle's
        progress.note(f"    WARNING: {risky}")
    progress.note(f"Superset reads as {settings.reader_role} (read-only, statement_timeout "
         f"{settings.reader_statement_timeout})")

    if not demo:
        progress.step(4, "demo data", outcome="skipped", detail="skipped (not demo mode)")
    elif reseed or source_row_count(url, settings) == 0:
        progress.step(4, "demo data", outcome="seeding")
        counts = seed_job(url)
        progress.note(", ".join(f"{table} {n:,}" for table, n in counts.items()), rows=counts)
    else:
        progress.step(4, "demo data", outcome="kept", detail="source tables have rows, kept (use --reseed to replace them)")
    collect.collect_once(url, settings)
    return url


def check_secrets() -> None:
    """Refuse weak or (outside demo mode) missing secrets before anything is created."""
    for problem in (config.secret_key_problem(), config.admin_password_problem()):
        if problem:
            raise config.ConfigError(problem)


def superset_layer(settings: config.Settings, progress: Progress, owner_url: str) -> None:
    """Superset metadata, roles, admin user and the assets, whose databases connect as the
    read-only role (the analytics one through the pooler or to the standby when there is one,
    the server-health one to the primary), and the alerts when they are on."""
    with app.app_context(settings) as flask_app:
        internals.require_unchanged()  # before Superset's metadata is touched
        progress.step(5, "Superset metadata database")
        started = time.monotonic()
        setup.upgrade_metadata()
        setup.sync_roles()
        progress.note(f"migrated, roles synced ({time.monotonic() - started:.0f}s)")

        username, password, generated = setup.admin_credentials(settings)
        progress.step(6, "admin user")
        where = f" (kept in {setup.admin_password_file(settings)})" if generated else ""
        if setup.ensure_admin(username, password, settings.admin_email):
            shown = f"password {password}" if generated else "password from SUPERSET_ADMIN_PASSWORD"
            progress.note(f"created {username!r}, {shown}{where}")
        elif generated:  # the kept password file was lost: the new one must be the one that works
            setup.reset_admin_password(username, password)
            progress.note(f"{username!r} exists but its password file was missing: password reset to {password}{where}")
        else:
            progress.note(f"{username!r} exists, unchanged")

        progress.step(7, "dashboards", detail="importing assets/")
        counts = assets.import_bundle(assets.ASSETS_DIR, privileges.superset_url(owner_url, settings), settings,
                                      server_uri=privileges.server_url(owner_url, settings))
        progress.note(", ".join(f"{n} {kind}" for kind, n in counts.items()))
        # Superset has the reader's password of now: so does a running serve's PgBouncer (a rotation;
        # Superset's kept connections and PgBouncer's own stay logged in meanwhile)
        told = pooler.give_password(settings, privileges.reader_password(settings))
        if told:
            progress.note(f"the running PgBouncer{'s' if told > 1 else ''} reloaded the reader's password")
        progress.note("roles " + ", ".join(roles.sync()) + " and brand rules synced")
        if roles.ensure_alerts_executor():
            progress.note(f"created {config.ALERTS_EXECUTOR!r}, the user alerts and reports run as (role Sparklio Alerts)")
        alerts_sync.bootstrap_sync(flask_app, settings, progress.note)
