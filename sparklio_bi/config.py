"""Settings of the bundle, read from the environment with safe defaults (one loader for all)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class ConfigError(ValueError):
    """A setting from the environment is invalid."""


@dataclass(frozen=True)
class Settings:
    """Everything the CLI needs to know about where things live."""

    database_url: str | None  # DATABASE_URL: an existing server; None means the embedded one
    superset_database_url: str | None  # SUPERSET_DATABASE_URL: Superset's metadata database
    analytics_schema: str
    source_schema: str
    data_dir: Path
    pg_port: int
    pg_database: str
    redis_url: str | None

    @property
    def embedded(self) -> bool:
        """True when the bundle runs its own PostgreSQL server."""
        return self.database_url is None

    @property
    def pg_dir(self) -> Path:
        return self.data_dir / "pg"


def _identifier(name: str, value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ConfigError(f"{name}={value!r} is not a plain lowercase SQL identifier")
    return value


def load(env: dict[str, str] | None = None) -> Settings:
    """Read the settings from the environment (or from `env`)."""
    env = os.environ if env is None else env
    try:
        port = int(env.get("SPARKLIO_PG_PORT", "5433"))
    except ValueError as exc:
        raise ConfigError(f"SPARKLIO_PG_PORT={env['SPARKLIO_PG_PORT']!r} is not a port number") from exc
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        superset_database_url=env.get("SUPERSET_DATABASE_URL") or None,
        analytics_schema=_identifier("ANALYTICS_SCHEMA", env.get("ANALYTICS_SCHEMA", "analytics")),
        source_schema=_identifier("SOURCE_SCHEMA", env.get("SOURCE_SCHEMA", "public")),
        data_dir=Path(env.get("SPARKLIO_DATA_DIR", PROJECT_ROOT / ".data")).resolve(),
        pg_port=port,
        pg_database=_identifier("SPARKLIO_PG_DATABASE", env.get("SPARKLIO_PG_DATABASE", "sparklio")),
        redis_url=env.get("REDIS_URL") or None,
    )
