"""sparklio-bi: Superset dashboards over versioned analytics views of Sparklio's PostgreSQL."""

__version__ = "0.1.0"
