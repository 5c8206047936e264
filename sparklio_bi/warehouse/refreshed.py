"""What one rollup refresh did, as `rollups refresh` reports it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class Refreshed:
    rollup: str
    periods: int  # days and hours recomputed
    rows: int  # rollup rows written
    seconds: float
    since: datetime | str | None = None  # start of the earliest period recomputed
    repaired: tuple[datetime, ...] = ()  # days whose counts differed from the raw view's, recomputed
