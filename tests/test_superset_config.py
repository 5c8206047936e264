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
                  "start": c.DEFAULT_RELATIVE_START_TIME, "end": c.DEFAULT_RELATIVE_END_TIME}))
"""


def load(tmp_path, **env):
    base = {"PATH": "/usr/bin:/bin", "SPARKLIO_DATA_DIR": str(tmp_path / "data"),
            "SUPERSET_DATABASE_URL": "postgresql://u:p@db.example:5432/meta"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_defaults_are_safe_and_in_process(tmp_path):
    config = load(tmp_path)
    assert config["meta"] == "postgresql+psycopg2://u:p@db.example:5432/meta"
    assert config["data"]["CACHE_TYPE"] == "SimpleCache" and config["data"]["CACHE_DEFAULT_TIMEOUT"] == 60
    assert not config["celery"]
    assert (config["start"], config["end"]) == ("now", "now")
    key_file = tmp_path / "data" / "superset-secret-key"
    assert config["secret"] == key_file.read_text().strip() and len(config["secret"]) >= 40
    assert key_file.stat().st_mode & 0o077 == 0
    assert load(tmp_path)["secret"] == config["secret"]  # generated once, then kept


def test_environment_overrides(tmp_path):
    config = load(tmp_path, SUPERSET_SECRET_KEY="from-env", REDIS_URL="redis://cache:6379/1",
                  SUPERSET_PORT="9000", SUPERSET_DATA_CACHE_TIMEOUT="5")
    assert config["secret"] == "from-env"
    assert not (tmp_path / "data" / "superset-secret-key").exists()
    assert config["port"] == 9000
    for cache in (config["data"], config["cache"]):
        assert cache["CACHE_TYPE"] == "RedisCache" and cache["CACHE_REDIS_URL"] == "redis://cache:6379/1"
    assert config["data"]["CACHE_DEFAULT_TIMEOUT"] == 5
    assert config["celery"]
