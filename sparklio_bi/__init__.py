"""sparklio-bi: Superset dashboards over versioned analytics views of Sparklio's PostgreSQL."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sparklio-bi")  # pyproject.toml's, as installed: one place for the version
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
