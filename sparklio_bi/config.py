"""Settings of the bundle, read from the environment with safe defaults (one loader for all)."""
from __future__ import annotations

import os
import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from sparklio_bi import datadir
from sparklio_bi.errors import ExpectedError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPERSET_DATABASE = "superset"  # Superset's metadata database on the embedded server (or beside the analytics one)
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
ALERTS_EXECUTOR = "sparklio-alerts"  # the Superset user every alert and report runs as (viewer role)
DURATION = re.compile(r"^\d+(ms|s|min|h)?$")  # as PostgreSQL reads statement_timeout


class ConfigError(ExpectedError, ValueError):
    """A setting from the environment is invalid."""


def _env(name: str, default=MISSING, secret: bool = False):
    """A Settings field read from the environment variable `name` (its metadata names it)."""
    return field(default=default, repr=not secret, metadata={"env": name})


@dataclass(frozen=True)
class Settings:
    """Every environment variable the bundle reads, read once by `load` and passed down; each
    field names its variable (`variables()`). Secrets are kept out of repr."""

    database_url: str | None = _env("DATABASE_URL", secret=True)  # an existing server; None: the embedded one
    superset_database_url: str | None = _env("SUPERSET_DATABASE_URL", secret=True)  # Superset's metadata database
    analytics_schema: str = _env("ANALYTICS_SCHEMA")
    source_schema: str = _env("SOURCE_SCHEMA")
    data_dir: Path = _env("SPARKLIO_DATA_DIR")
    pg_port: int = _env("SPARKLIO_PG_PORT")
    pg_database: str = _env("SPARKLIO_PG_DATABASE")
    redis_url: str | None = _env("REDIS_URL", secret=True)
    # where Superset's analytics connection goes instead of the primary (a hot standby, a pooler);
    # the reader role and its password are put in it
    reader_target_url: str | None = _env("SPARKLIO_READER_URL", None, secret=True)
    pooler: str = _env("SPARKLIO_POOLER", "auto")  # auto | pgbouncer | none: PgBouncer before the embedded server
    pooler_port: int = _env("SPARKLIO_POOLER_PORT", 6432)
    reader_role: str = _env("SPARKLIO_READER_ROLE", "sparklio_reader")  # the read-only role Superset connects as
    reader_statement_timeout: str = _env("SPARKLIO_READER_STATEMENT_TIMEOUT", "30s")  # enforced by PostgreSQL
    timezone: str = _env("SPARKLIO_TIMEZONE", "UTC")  # the reporting time zone of days (rollups, daily views)
    refresh_seconds: float = _env("SPARKLIO_REFRESH_SECONDS", 30)  # how often `serve` refreshes the rollups
    superset_host: str = _env("SUPERSET_HOST", "127.0.0.1")  # where `serve` listens (and doctor looks)
    superset_port: int = _env("SUPERSET_PORT", 8088)
    pg_password: str | None = _env("SPARKLIO_PG_PASSWORD", None, secret=True)  # embedded superuser's; else generated
    reader_password: str | None = _env("SPARKLIO_READER_PASSWORD", None, secret=True)  # else generated
    secret_key: str | None = _env("SUPERSET_SECRET_KEY", None, secret=True)  # else generated (demo mode)
    previous_secret_key: str | None = _env("PREVIOUS_SECRET_KEY", None, secret=True)  # while rotating the key
    # set by `recover-secret-key` for the Superset it starts in-process (superset_config.py), not by a person
    secret_key_recovery: bool = _env("SPARKLIO_SECRET_KEY_RECOVERY", False)
    admin_username: str = _env("SUPERSET_ADMIN_USERNAME", "admin")
    admin_password: str | None = _env("SUPERSET_ADMIN_PASSWORD", None, secret=True)  # else generated (demo mode)
    admin_email: str | None = _env("SUPERSET_ADMIN_EMAIL", None)  # else <username>@sparklio.local
    # Alertmanager's receivers (`metrics alertmanager-config` renders monitoring/alertmanager.yml)
    alert_email_to: str | None = _env("ALERT_EMAIL_TO", None)
    alert_email_from: str | None = _env("ALERT_EMAIL_FROM", None)
    alert_smtp_smarthost: str | None = _env("ALERT_SMTP_SMARTHOST", None)  # host:port
    alert_smtp_username: str | None = _env("ALERT_SMTP_USERNAME", None)
    alert_smtp_password: str | None = _env("ALERT_SMTP_PASSWORD", None, secret=True)
    alert_smtp_require_tls: bool = _env("ALERT_SMTP_REQUIRE_TLS", True)
    alert_webhook_url: str | None = _env("ALERT_WEBHOOK_URL", None, secret=True)  # may carry a token
    # optional: the Watchdog's heartbeats (a dead-man's switch outside) and a Slack incoming webhook
    alert_heartbeat_url: str | None = _env("ALERT_HEARTBEAT_URL", None, secret=True)
    alert_slack_webhook_url: str | None = _env("ALERT_SLACK_WEBHOOK_URL", None, secret=True)
    # alerts/*.yaml (`alerts validate`, `sync`): webhooks to loopback and private addresses, and
    # how many addresses and channels one alert or report may go to
    alerts_allow_private_webhooks: bool = _env("SPARKLIO_ALERTS_ALLOW_PRIVATE_WEBHOOKS", False)
    alerts_max_recipients: int = _env("SPARKLIO_ALERTS_MAX_RECIPIENTS", 100)

    @property
    def embedded(self) -> bool:
        """True when the bundle runs its own PostgreSQL server."""
        return self.database_url is None

    @property
    def pg_dir(self) -> Path:
        return self.data_dir / datadir.PG


def _identifier(name: str, value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ConfigError(f"{name}={value!r} is not a plain lowercase SQL identifier")
    return value


def load(env: dict[str, str] | None = None) -> Settings:
    """Read the settings from the environment (or from `env`)."""
    env = os.environ if env is None else env
    return Settings(
        database_url=_postgres_url("DATABASE_URL", env.get("DATABASE_URL")),
        superset_database_url=_postgres_url("SUPERSET_DATABASE_URL", env.get("SUPERSET_DATABASE_URL")),
        analytics_schema=_identifier("ANALYTICS_SCHEMA", env.get("ANALYTICS_SCHEMA", "analytics")),
        source_schema=_identifier("SOURCE_SCHEMA", env.get("SOURCE_SCHEMA", "public")),
        data_dir=_data_dir(Path(env.get("SPARKLIO_DATA_DIR") or PROJECT_ROOT / ".data").resolve()),
        pg_port=_port("SPARKLIO_PG_PORT", env.get("SPARKLIO_PG_PORT") or "5433"),
        pg_database=_identifier("SPARKLIO_PG_DATABASE", env.get("SPARKLIO_PG_DATABASE", "sparklio")),
        redis_url=env.get("REDIS_URL") or None,
        reader_target_url=_postgres_url("SPARKLIO_READER_URL", env.get("SPARKLIO_READER_URL")),
        pooler=_choice("SPARKLIO_POOLER", env.get("SPARKLIO_POOLER") or "auto", ("auto", "pgbouncer", "none")),
        pooler_port=_port("SPARKLIO_POOLER_PORT", env.get("SPARKLIO_POOLER_PORT") or "6432"),
        reader_role=_identifier("SPARKLIO_READER_ROLE", env.get("SPARKLIO_READER_ROLE", "sparklio_reader")),
        reader_statement_timeout=_duration("SPARKLIO_READER_STATEMENT_TIMEOUT",
                                           env.get("SPARKLIO_READER_STATEMENT_TIMEOUT", "30s")),
        timezone=_timezone("SPARKLIO_TIMEZONE", env.get("SPARKLIO_TIMEZONE") or "UTC"),
        refresh_seconds=_seconds("SPARKLIO_REFRESH_SECONDS", env.get("SPARKLIO_REFRESH_SECONDS") or "30", 1, 3600),
        superset_host=env.get("SUPERSET_HOST") or "127.0.0.1",
        superset_port=_port("SUPERSET_PORT", env.get("SUPERSET_PORT") or "8088"),
        pg_password=env.get("SPARKLIO_PG_PASSWORD") or None,
        reader_password=env.get("SPARKLIO_READER_PASSWORD") or None,
        secret_key=env.get("SUPERSET_SECRET_KEY") or None,
        previous_secret_key=env.get("PREVIOUS_SECRET_KEY") or None,
        secret_key_recovery=bool(env.get("SPARKLIO_SECRET_KEY_RECOVERY")),
        admin_username=env.get("SUPERSET_ADMIN_USERNAME") or "admin",
        admin_password=env.get("SUPERSET_ADMIN_PASSWORD") or None,
        admin_email=env.get("SUPERSET_ADMIN_EMAIL") or None,
        alert_email_to=env.get("ALERT_EMAIL_TO") or None,
        alert_email_from=env.get("ALERT_EMAIL_FROM") or None,
        alert_smtp_smarthost=env.get("ALERT_SMTP_SMARTHOST") or None,
        alert_smtp_username=env.get("ALERT_SMTP_USERNAME") or None,
        alert_smtp_password=env.get("ALERT_SMTP_PASSWORD") or None,
        alert_smtp_require_tls=_choice("ALERT_SMTP_REQUIRE_TLS", env.get("ALERT_SMTP_REQUIRE_TLS") or "true",
                                       ("true", "false")) == "true",
        alert_webhook_url=env.get("ALERT_WEBHOOK_URL") or None,
        alert_heartbeat_url=env.get("ALERT_HEARTBEAT_URL") or None,
        alert_slack_webhook_url=env.get("ALERT_SLACK_WEBHOOK_URL") or None,
        alerts_allow_private_webhooks=_choice("SPARKLIO_ALERTS_ALLOW_PRIVATE_WEBHOOKS",
                                              env.get("SPARKLIO_ALERTS_ALLOW_PRIVATE_WEBHOOKS") or "false",
                                              ("true", "false")) == "true",
        alerts_max_recipients=_count("SPARKLIO_ALERTS_MAX_RECIPIENTS",
                                     env.get("SPARKLIO_ALERTS_MAX_RECIPIENTS") or "100", 1, 10000),
    )


def variables() -> dict[str, str]:
    """Environment variable -> the Settings field holding it."""
    return {f.metadata["env"]: f.name for f in fields(Settings)}


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _count(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConfigError(f"{name}={value!r} is not a whole number from {low} to {high}")
    return int(value)


def _seconds(name: str, value: str, low: float, high: float) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not low <= seconds <= high:
        raise ConfigError(f"{name}={value!r} is not a number of seconds from {low:g} to {high:g}")
    return seconds


def _timezone(name: str, value: str) -> str:
    """An IANA time zone name (Asia/Seoul, UTC), as both Python and PostgreSQL know them."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if not re.fullmatch(r"[A-Za-z0-9_+/-]+", value):
            raise ValueError
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a time zone name such as UTC or Asia/Seoul") from None
    return value


def for_migration() -> Settings:
    """Inside an Alembic run: the settings migrate.upgrade/downgrade passed down (one loader, read
    once); the environment's only when Alembic runs on its own (`alembic upgrade head`)."""
    from alembic import context

    try:
        passed = context.config.attributes.get("settings")
    except AttributeError:  # no migration is running
        passed = None
    return passed or load()


def _port(name: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError(f"{name}={value!r} is not a port number (1-65535)")
    return int(value)


POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg2")


def _postgres_url(name: str, value: str | None) -> str | None:
    """A PostgreSQL URL (the bundle speaks only PostgreSQL), checked before anything connects."""
    if not value:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
        url.port  # noqa: B018 - parsing the port raises on a non-numeric one
    except (ArgumentError, ValueError):
        raise ConfigError(f"{name} is not a database URL (expected postgresql://user:password@host:port/database)") from None
    if url.drivername not in POSTGRES_SCHEMES:
        raise ConfigError(f"{name} is a {url.drivername} URL: sparklio-bi needs PostgreSQL (postgresql://...)")
    if not url.database:
        raise ConfigError(f"{name} names no database (postgresql://user:password@host:port/database)")
    return value


def _data_dir(path: Path) -> Path:
    """SPARKLIO_DATA_DIR: a directory, or a place one can be made."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"SPARKLIO_DATA_DIR={path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"SPARKLIO_DATA_DIR={path}: {existing} is not writable")
    return path


def _duration(name: str, value: str) -> str:
    if not DURATION.match(value) or not re.sub(r"\D", "", value).lstrip("0"):
        raise ConfigError(f"{name}={value!r} is not a positive duration such as 30s, 500ms or 2min")
    return value


# Keys shipped in examples and docs (Superset's, Flask's): as good as none.
WELL_KNOWN_SECRET_KEYS = frozenset({
    "thisISaSECRET_1234", "\x02\x01thisismyscretkey\x01\x02\\e\\y\\y\\h",
    "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", "TEST_NON_DEV_SECRET", "changeme", "change-me", "secret",
    "superset", "dev", "development", "YOUR_OWN_RANDOM_GENERATED_SECRET_KEY",
})
MIN_SECRET_KEY_LENGTH = 32
MIN_ADMIN_PASSWORD_LENGTH = 12
# Strength as zxcvbn estimates it (the guesses an attacker with dictionaries and patterns needs):
# a password at least its score 3 ("safely unguessable", 10^8 guesses and more); a key that signs
# sessions and encrypts stored passwords 10^20 (a random 32-character key is far above it,
# repeated or patterned text far below: 36 "a"s are about 10^2.6).
MIN_PASSWORD_SCORE = 3
MIN_SECRET_KEY_GUESSES_LOG10 = 20
HOW_TO_MAKE_A_SECRET = "e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(42))'`"


def _strength(value: str) -> dict:
    from zxcvbn import zxcvbn

    return zxcvbn(value[:100])  # its time grows with the length; 100 characters say enough


def demo_mode(env: dict[str, str] | None = None) -> bool:
    """Demo mode is the embedded server alone (neither DATABASE_URL nor SUPERSET_DATABASE_URL):
    only there may secrets be generated."""
    env = os.environ if env is None else env
    return not (env.get("DATABASE_URL") or env.get("SUPERSET_DATABASE_URL"))


def secret_key_problem(env: dict[str, str] | None = None) -> str | None:
    """Why SUPERSET_SECRET_KEY is unfit (None: fine). In demo mode it may be unset (one is
    generated and kept in the data dir); a key that is set must be long and not well known."""
    env = os.environ if env is None else env
    key = env.get("SUPERSET_SECRET_KEY") or ""
    if not key:
        return None if demo_mode(env) else \
            f"SUPERSET_SECRET_KEY is not set: set it to a long random string ({HOW_TO_MAKE_A_SECRET})"
    if key in WELL_KNOWN_SECRET_KEYS or len(key) < MIN_SECRET_KEY_LENGTH:
        return (f"SUPERSET_SECRET_KEY is {'a well-known example' if key in WELL_KNOWN_SECRET_KEYS else 'too short'}: "
                f"set it to {MIN_SECRET_KEY_LENGTH}+ random characters ({HOW_TO_MAKE_A_SECRET})")
    if _strength(key)["guesses_log10"] < MIN_SECRET_KEY_GUESSES_LOG10:
        return (f"SUPERSET_SECRET_KEY is too easy to guess (repeated or patterned characters): set it to "
                f"{MIN_SECRET_KEY_LENGTH}+ random characters ({HOW_TO_MAKE_A_SECRET})")
    return None


def admin_password_problem(env: dict[str, str] | None = None) -> str | None:
    """Why SUPERSET_ADMIN_PASSWORD is unfit (None: fine); only demo mode may generate one."""
    env = os.environ if env is None else env
    password = env.get("SUPERSET_ADMIN_PASSWORD") or ""
    if not password:
        return None if demo_mode(env) else \
            "SUPERSET_ADMIN_PASSWORD is not set: set it (at least 12 characters) for the admin user"
    return password_problem(password, "SUPERSET_ADMIN_PASSWORD")


def password_problem(password: str, what: str = "the password") -> str | None:
    """Why a person's password is unfit (None: fine): too short, or easy to guess (zxcvbn)."""
    if len(password) < MIN_ADMIN_PASSWORD_LENGTH:
        return f"{what} is too short: use at least {MIN_ADMIN_PASSWORD_LENGTH} characters"
    found = _strength(password)
    if found["score"] < MIN_PASSWORD_SCORE:
        hint = found["feedback"].get("warning") or "a common word or pattern"
        return f"{what} is too easy to guess ({hint.rstrip('.').lower()}): use a longer, less common one"
    return None
