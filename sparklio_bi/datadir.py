"""Every file the bundle keeps in its data dir (SPARKLIO_DATA_DIR, .data/ by default), named
once, and the one way a secret is kept there: made once, written 0600, read back."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

PG = "pg"  # the embedded PostgreSQL cluster (initdb)
PG_LOG = "pg.log"  # the embedded server's log (0600: it logs failed statements verbatim)
PG_PASSWORD = "pg-password"  # the embedded superuser's password, written at initdb
READER_PASSWORD = "pg-reader-password"  # the read-only role's password, unless SPARKLIO_READER_PASSWORD
ADMIN_PASSWORD = "superset-admin-password"  # Superset's admin password in demo mode
SECRET_KEY = "superset-secret-key"  # Superset's SECRET_KEY in demo mode
POOLER = "pgbouncer"  # PgBouncer's ini, auth file (0600), log and pid, when serve runs it
CELERY_BEAT_SCHEDULE = "celerybeat-schedule"  # Celery beat's record of what it last sent
SUPERSET_CACHE = "superset-cache"  # the chart data cache both gunicorn workers share (no REDIS_URL)


def lock(data_dir: Path, name: str) -> Path:
    """`.<name>.lock`: held by one bootstrap, seed, ... at a time."""
    return data_dir / f".{name}.lock"


def serve_state(data_dir: Path, port: int) -> Path:
    """What `serve` on `port` says of its children (read by doctor)."""
    return data_dir / f"serve-{port}.json"


def serve_lock(data_dir: Path, port: int) -> Path:
    return data_dir / f"serve-{port}.lock"


def gunicorn_socket(data_dir: Path, port: int) -> Path:
    return data_dir / f"gunicorn-{port}.ctl"


def new_secret(length: int) -> str:
    return secrets.token_urlsafe(length)


def write_secret(path: Path, value: str) -> None:
    """`value` into `path`, readable by its owner only from its first byte on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(value + "\n")


def kept_secret(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """(the secret kept in `path`, whether it was made now): made by `make` the first time."""
    if path.exists():
        return path.read_text().strip(), False
    value = make()
    write_secret(path, value)
    return value, True
