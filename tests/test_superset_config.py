"""superset_config.py takes every setting from the environment, with safe defaults."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, superset_config as c
print(json.dumps({"secret": c.SECRET_KEY, "meta": c.SQLALCHEMY_DATABASE_URI, "port": c.SUPERSET_WEBSERVER_PORT,
                  "data": c.DATA_CACHE_CONFIG, "cache": c.CACHE_CONFIG,
                  "celery": getattr(c, "CELERY_CONFIG", None) is not None,
                  "start": c.DEFAULT_RELATIVE_START_TIME, "end": c.DEFAULT_RELATIVE_END_TIME,
                  "secure": c.SESSION_COOKIE_SECURE, "httponly": c.SESSION_COOKIE_HTTPONLY,
                  "samesite": c.SESSION_COOKIE_SAMESITE}))
"""


KEY = "Rt7vQe2LmX9pZk4WsB6nHc1JdF8gYa3U"  # long and random enough outside demo mode


def run(tmp_path, **env):
    base = {"PATH": "/usr/bin:/bin", "SPARKLIO_DATA_DIR": str(tmp_path / "data"), "SPARKLIO_PG_PASSWORD": "p"}
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def load(tmp_path, **env):
    done = run(tmp_path, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_defaults_are_safe_and_shared_between_workers(tmp_path):
    """Demo mode (the embedded server): a secret key is generated once and kept 0600; chart data
    cached in files of the data dir, which both gunicorn workers read."""
    config = load(tmp_path)
    assert config["meta"] == "postgresql+psycopg2://postgres:p@127.0.0.1:5433/superset"
    assert config["data"]["CACHE_TYPE"] == "FileSystemCache" and config["data"]["CACHE_DEFAULT_TIMEOUT"] == 30
    assert config["data"]["CACHE_DIR"] == str(tmp_path / "data" / "superset-cache" / "data")
    assert not config["celery"]
    assert (config["start"], config["end"]) == ("now", "now")
    assert (config["secure"], config["httponly"], config["samesite"]) == (False, True, "Lax")
    key_file = tmp_path / "data" / "superset-secret-key"
    assert config["secret"] == key_file.read_text().strip() and len(config["secret"]) >= 40
    assert key_file.stat().st_mode & 0o077 == 0
    assert load(tmp_path)["secret"] == config["secret"]  # generated once, then kept


def test_environment_overrides(tmp_path):
    config = load(tmp_path, SUPERSET_SECRET_KEY=KEY, REDIS_URL="redis://cache:6379/1",
                  SUPERSET_PORT="9000", SUPERSET_DATA_CACHE_TIMEOUT="5",
                  SUPERSET_DATABASE_URL="postgresql://u:p@db.example:5432/meta")
    assert config["secret"] == KEY
    assert config["meta"] == "postgresql+psycopg2://u:p@db.example:5432/meta"
    assert not (tmp_path / "data" / "superset-secret-key").exists()
    assert config["port"] == 9000
    for cache in (config["data"], config["cache"]):
        assert cache["CACHE_TYPE"] == "RedisCache" and cache["CACHE_REDIS_URL"] == "redis://cache:6379/1"
    assert config["data"]["CACHE_DEFAULT_TIMEOUT"] == 5
    assert config["celery"]


def test_cookies_are_secure_behind_a_tls_proxy(tmp_path):
    assert load(tmp_path, ENABLE_PROXY_FIX="true")["secure"] is True
    assert load(tmp_path, ENABLE_PROXY_FIX="true", SUPERSET_COOKIE_SECURE="false")["secure"] is False


def test_outside_demo_mode_no_key_is_generated(tmp_path):
    done = run(tmp_path, SUPERSET_DATABASE_URL="postgresql://u:p@db.example:5432/meta")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: SUPERSET_SECRET_KEY is not set")
    assert not (tmp_path / "data" / "superset-secret-key").exists()
