"""Superset's side of the bootstrap, through Superset's own mechanisms (its metadata migrations,
security manager and import command), and the web server."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from pathlib import Path

from sparklio_bi import config, datadir
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database
from sparklio_bi.superset import app, assets, internals, secret_key


def admin_password_file(settings: config.Settings) -> Path:
    return settings.data_dir / datadir.ADMIN_PASSWORD


def admin_credentials(settings: config.Settings) -> tuple[str, str, bool]:
    """(username, password, generated): SUPERSET_ADMIN_PASSWORD, else one generated once and
    kept in .data/superset-admin-password."""
    username = settings.admin_username
    password = settings.admin_password
    if password:
        return username, password, False
    password, made = datadir.kept_secret(admin_password_file(settings), lambda: datadir.new_secret(12))
    return username, password, made


def upgrade_metadata() -> None:
    """`superset db upgrade`, in-process (needs an app context), quietly."""
    logging.disable(logging.INFO)  # Superset's alembic env logs every table it creates,
    try:  # and some of its migrations print their progress
        with contextlib.redirect_stdout(io.StringIO()):
            internals.upgrade_metadata()
    finally:
        logging.disable(logging.NOTSET)


def ensure_admin(username: str, password: str, email: str | None = None) -> bool:
    """Create the admin user unless it exists; True when created (needs an app context)."""
    security_manager = internals.security()
    if security_manager.find_user(username=username):
        return False
    role = security_manager.find_role("Admin")
    email = email or f"{username}@sparklio.local"
    user = security_manager.add_user(username, "Sparklio", "Admin", email, role, password=password)
    if not user:
        raise ExpectedError(f"Superset refused to create the admin user {username!r}")
    return True


def sync_roles() -> None:
    """`superset init`: permissions and built-in roles (needs an app context)."""
    internals.sync_roles()


def reset_admin_password(username: str, password: str) -> None:
    """Give the existing admin this password (needs an app context)."""
    security_manager = internals.security()
    security_manager.reset_password(security_manager.find_user(username=username).id, password)


def recover_secret_key(settings: config.Settings, reader_url: str, server_url: str | None = None) -> tuple[str, list[str]]:
    """After a lost SECRET_KEY: a new key (SUPERSET_SECRET_KEY, else a new file; the old file is
    kept aside) and the bundle's databases re-imported with their passwords encrypted by it.
    Returns (what was done, databases whose stored secrets are still unreadable)."""
    metadata_url = database.superset_metadata_url(settings)
    path = secret_key.key_file(settings)
    env_key = settings.secret_key
    current, _ = secret_key.current_key(settings)
    if current and secret_key.undecryptable(metadata_url, current) == []:
        return "the secret key already matches Superset's metadata: nothing to do", []
    done = "SUPERSET_SECRET_KEY kept"
    if not env_key:
        if path.exists():
            path.rename(path.with_name(f"{path.name}.unmatched-{int(time.time())}"))
        datadir.write_secret(path, datadir.new_secret(42))
        done = f"new key in {path}"
    for name in assets.DATABASE_NAMES:
        secret_key.forget_database_secrets(metadata_url, name)
    os.environ["SPARKLIO_SECRET_KEY_RECOVERY"] = "1"  # superset_config would refuse the new key
    try:
        with app.app_context(settings):
            assets.import_bundle(assets.ASSETS_DIR, reader_url, settings, kinds=("databases",), server_uri=server_url)
    finally:
        del os.environ["SPARKLIO_SECRET_KEY_RECOVERY"]
    key = env_key or path.read_text().strip()
    return f"{done}; the bundle's database passwords re-injected", secret_key.undecryptable(metadata_url, key) or []
