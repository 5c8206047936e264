"""Superset 6.1.0 configuration of sparklio-bi: every setting comes from the environment,
with a safe default for the embedded demo (see README, "Configuration")."""
import os
import secrets
from pathlib import Path

from sparklio_bi import config as bundle_config
from sparklio_bi import database

_settings = bundle_config.load()


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _demo_secret_key() -> str:
    """In demo mode a random key is made once and kept in .data/ (never in git)."""
    path = _settings.data_dir / "superset-secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(42))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY") or _demo_secret_key()

# Superset's metadata lives in PostgreSQL: a `superset` database beside the analytics one.
SQLALCHEMY_DATABASE_URI = database.superset_metadata_url(_settings, start=False)
SQLALCHEMY_TRACK_MODIFICATIONS = False

SUPERSET_WEBSERVER_PORT = int(_env("SUPERSET_PORT", "8088"))
ROW_LIMIT = int(_env("SUPERSET_ROW_LIMIT", "50000"))
SQLLAB_TIMEOUT = int(_env("SUPERSET_SQLLAB_TIMEOUT", "60"))
SUPERSET_WEBSERVER_TIMEOUT = int(_env("SUPERSET_WEBSERVER_TIMEOUT", "60"))

# The reference SQL's windows are rolling up to now (NOW() - INTERVAL '7 days'); Superset's
# relative ranges end at today's midnight by default, which hides today from an ops dashboard.
DEFAULT_RELATIVE_START_TIME = "now"
DEFAULT_RELATIVE_END_TIME = "now"

# Caching: in-process by default, Redis when REDIS_URL is set. Chart data is kept briefly so
# dashboards stay current (SUPERSET_DATA_CACHE_TIMEOUT seconds).
_REDIS_URL = _settings.redis_url
_DATA_TIMEOUT = int(_env("SUPERSET_DATA_CACHE_TIMEOUT", "60"))


def _cache(prefix: str, timeout: int) -> dict:
    if _REDIS_URL:
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": _REDIS_URL,
                "CACHE_KEY_PREFIX": f"sparklio_{prefix}_", "CACHE_DEFAULT_TIMEOUT": timeout}
    return {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 1000, "CACHE_DEFAULT_TIMEOUT": timeout}


CACHE_CONFIG = _cache("meta", 300)
DATA_CACHE_CONFIG = _cache("data", _DATA_TIMEOUT)
FILTER_STATE_CACHE_CONFIG = _cache("filter", 86400)
EXPLORE_FORM_DATA_CACHE_CONFIG = _cache("explore", 86400)

if _REDIS_URL:
    class CeleryConfig:  # noqa: D101 - Superset reads this class by name
        broker_url = _REDIS_URL
        result_backend = _REDIS_URL
        worker_prefetch_multiplier = 1
        task_acks_late = False

    CELERY_CONFIG = CeleryConfig

FEATURE_FLAGS = {
    "DASHBOARD_NATIVE_FILTERS": True,
    "ALERT_REPORTS": _env("SUPERSET_ALERT_REPORTS", "false").lower() == "true",
}

# Behind a proxy (docker-compose) set ENABLE_PROXY_FIX=true.
ENABLE_PROXY_FIX = _env("ENABLE_PROXY_FIX", "false").lower() == "true"
WTF_CSRF_ENABLED = _env("WTF_CSRF_ENABLED", "true").lower() == "true"

LOG_LEVEL = _env("SUPERSET_LOG_LEVEL", "WARNING")
