"""The bundle's own charts beyond the spec: host resources, Redis and Celery on dashboard 5, System Resources (issue 32).
Each has its reference SQL, written in the spec's style, on the raw tables the bundle owns."""
from __future__ import annotations

from sparklio_bi.quality.chart_spec import Chart

DASHBOARDS: dict[str, str] = {}  # a new dashboard's number -> its title in assets/

CHARTS: list[Chart] = []

CHART_FILES: dict[str, str] = {}  # key -> assets/charts/<file>.yaml
