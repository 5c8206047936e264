"""Superset's side of the bootstrap, through Superset's own mechanisms (its metadata migrations,
security manager and import command), and the web server."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import time
from pathlib import Path

from . import config, superset_app, superset_internals
from .errors import BundleError

ADMIN_USERNAME_DEFAULT = "admin"


def admin_password_file(settings: config.Settings) -> Path:
    return settings.data_dir / "superset-admin-password"


def admin_credentials(settings: config.Settings) -> tuple[str, str, bool]:
    """(username, password, generated): SUPERSET_ADMIN_PASSWORD, else one generated once and
    kept in .data/superset-admin-password."""
    username = os.environ.get("SUPERSET_ADMIN_USERNAME") or ADMIN_USERNAME_DEFAULT
    password = os.environ.get("SUPERSET_ADMIN_PASSWORD")
    if password:
        return username, password, False
    path = admin_password_file(settings)
    if path.exists():
        return username, path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return username, password, True


def upgrade_metadata() -> None:
    """`superset db upgrade`, in-process (needs an app context), quietly."""
    logging.disable(logging.INFO)  # Superset's alembic env logs every table it creates,
    try:  # and some of its migrations print their progress
        with contextlib.redirect_stdout(io.StringIO()):
            superset_internals.upgrade_metadata()
    finally:
        logging.disable(logging.NOTSET)


def ensure_admin(username: str, password: str) -> bool:
    """Create the admin user unless it exists; True when created (needs an app context)."""
    from superset import security_manager

    if security_manager.find_user(username=username):
        return False
    role = security_manager.find_role("Admin")
    email = os.environ.get("SUPERSET_ADMIN_EMAIL") or f"{username}@sparklio.local"
    user = security_manager.add_user(username, "Sparklio", "Admin", email, role, password=password)
    if not user:
        raise BundleError(f"Superset refused to create the admin user {username!r}")
    return True


def sync_roles() -> None:
    """`superset init`: permissions and built-in roles (needs an app context)."""
    superset_internals.sync_roles()


def reset_admin_password(username: str, password: str) -> None:
    """Give the existing admin this password (needs an app context)."""
    from superset import security_manager

    security_manager.reset_password(security_manager.find_user(username=username).id, password)


def recover_secret_key(settings: config.Settings, reader_url: str) -> tuple[str, list[str]]:
    """After a lost SECRET_KEY: a new key (SUPERSET_SECRET_KEY, else a new file; the old file is
    kept aside) and the bundle's database re-imported with its password encrypted by it.
    Returns (what was done, databases whose stored secrets are still unreadable)."""
    from . import assets, database, secret_key

    metadata_url = database.superset_metadata_url(settings)
    path = secret_key.key_file(settings)
    env_key = os.environ.get("SUPERSET_SECRET_KEY")
    current, _ = secret_key.current_key(settings)
    if current and secret_key.undecryptable(metadata_url, current) == []:
        return "the secret key already matches Superset's metadata: nothing to do", []
    done = "SUPERSET_SECRET_KEY kept"
    if not env_key:
        if path.exists():
            path.rename(path.with_name(f"{path.name}.unmatched-{int(time.time())}"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(42))
        done = f"new key in {path}"
    secret_key.forget_bundle_secrets(metadata_url, assets.DATABASE_NAME)
    os.environ["SPARKLIO_SECRET_KEY_RECOVERY"] = "1"  # superset_config would refuse the new key
    try:
        with superset_app.app_context():
            assets.import_bundle(assets.ASSETS_DIR, reader_url, kinds=("databases",))
    finally:
        del os.environ["SPARKLIO_SECRET_KEY_RECOVERY"]
    key = env_key or path.read_text().strip()
    return f"{done}; the bundle's database password re-injected", secret_key.undecryptable(metadata_url, key) or []
