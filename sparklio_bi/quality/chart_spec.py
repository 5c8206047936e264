"""What a chart's reference is: its key, title, how results compare, the reference SQL and the
query on the views. The spec's 29 (reference.py) and the bundle's own (reference_host.py,
reference_api.py) are written with it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    key: str  # "<dashboard>.<chart>" as numbered in the spec
    title: str
    kind: str
    reference: str  # on the application's tables (schema public), or the bundle's own raw tables
    views: str  # on the analytics views, as the chart queries them
    fix: str = ""  # how and why it departs from the spec's SQL, if it does


W7 = "now() - interval '7 days'"
W30 = "now() - interval '30 days'"
