"""Hours, days and months in the reporting time zone (SPARKLIO_TIMEZONE), as the rollups cut them."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo


def days_before(day: datetime, days: int, zone: ZoneInfo) -> datetime:
    """Local midnight `days` days before the local midnight `day` (whatever DST did between)."""
    local = day.astimezone(zone).replace(tzinfo=None) - timedelta(days=days)
    return local.replace(tzinfo=zone)


def hour_of(moment: datetime, zone: ZoneInfo) -> datetime:
    """The start of `moment`'s hour in `zone` (an offset of 30 minutes moves hours too)."""
    local = moment.astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)  # steps of 1 h: absolute


def day_of(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def month_of(moment: datetime, zone: ZoneInfo) -> datetime:
    return day_of(moment, zone).replace(day=1)


def next_month(month: datetime, zone: ZoneInfo) -> datetime:
    """The first day of the month after `month` (a first of the month in `zone`)."""
    local = month.astimezone(zone).replace(tzinfo=None)
    following = local.replace(year=local.year + local.month // 12, month=local.month % 12 + 1)
    return following.replace(tzinfo=zone)


def hours_between(since: datetime, until: datetime) -> Iterator[datetime]:
    """The hour starts from `since` (an hour start) up to and including `until`'s hour."""
    hour = since
    while hour < until or hour == since:
        yield hour
        hour += timedelta(hours=1)


def runs(starts: list[datetime], step: timedelta | None, end: datetime,
          zone: ZoneInfo | None = None) -> list[tuple[datetime, datetime]]:
    """Consecutive periods (hours: `step`; days of `zone`: step None) merged into [since, until)
    ranges, the last one cut at `end`."""
    runs: list[list[datetime]] = []
    for start in starts:
        following = start + step if step else days_before(start, -1, zone)
        if runs and runs[-1][1] == start:
            runs[-1][1] = following
        else:
            runs.append([start, following])
    return [(since, min(until, end)) for since, until in runs]
