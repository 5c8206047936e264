"""Times shown as the reporting zone's wall clock (issue 31, finding 9).

The reader role's sessions run in SPARKLIO_TIMEZONE, so PostgreSQL sends every `timestamptz` as
that zone's time with its offset (`2026-12-07 22:54:44+09`). psycopg2 makes that an aware
datetime, Superset turns it into an instant, and its pages print instants in UTC: a Seoul team
read 13:54:44 for a row at 22:54:44, and each day's point sat nine hours left of its tick.
Superset has no setting for the zone it shows; a naive datetime it shows as it is. So on
Superset's analytics connections a `timestamptz` is read as its wall clock in the session's zone
(the offset dropped after PostgreSQL applied it): the same value in UTC, the zone's clock elsewhere.
superset_config.py's DB_CONNECTION_MUTATOR gives Superset's engines this connection class.
"""
from __future__ import annotations

from typing import Any

import psycopg2.extensions as pg


def _wall_clock(value: str | None, cursor: Any):
    moment = pg.PYDATETIMETZ(value, cursor)
    return moment.replace(tzinfo=None) if moment is not None else None


WALL_CLOCK = pg.new_type(pg.PYDATETIMETZ.values, "SPARKLIO_WALL_CLOCK", _wall_clock)
WALL_CLOCK_ARRAY = pg.new_array_type(pg.PYDATETIMETZARRAY.values, "SPARKLIO_WALL_CLOCK_ARRAY", WALL_CLOCK)


class WallClockConnection(pg.connection):
    """A psycopg2 connection whose `timestamptz` values are naive wall-clock datetimes in the
    session's time zone."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        pg.register_type(WALL_CLOCK, self)
        pg.register_type(WALL_CLOCK_ARRAY, self)


def with_wall_clock(engine_kwargs: dict) -> dict:
    """Superset's engine arguments, its connections of WallClockConnection."""
    connect_args = dict(engine_kwargs.get("connect_args") or {})
    connect_args.setdefault("connection_factory", WallClockConnection)
    return {**engine_kwargs, "connect_args": connect_args}
