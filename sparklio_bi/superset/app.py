"""Superset, run in-process with the bundle's superset_config.py."""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from sparklio_bi import config
from sparklio_bi.superset import internals

CONFIG_PATH = config.PROJECT_ROOT / "superset_config.py"


def environment(settings: config.Settings) -> dict[str, str]:
    """Environment for Superset processes: the bundle's config module, the Flask app, the time zone."""
    env = dict(os.environ)
    # Superset's "today" (the charts' windows start at DATETIME("today")) is the process's local
    # midnight: in the reporting time zone, where the rollups' days begin.
    env["TZ"] = settings.timezone
    env.setdefault("SUPERSET_CONFIG_PATH", str(CONFIG_PATH))
    env.setdefault("FLASK_APP", "superset.app:create_app()")
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    return env


@contextlib.contextmanager
def app_context(settings: config.Settings) -> Iterator[flask.Flask]:  # noqa: F821
    """A Superset app context inside this process (for import/export commands)."""
    os.environ.update({k: v for k, v in environment(settings).items() if k not in os.environ})
    logging.disable(logging.INFO)  # Superset's start-up chatter (config sync, alembic context)
    try:
        app = internals.create_app()
    finally:
        logging.disable(logging.NOTSET)
    with app.app_context():
        yield app
