"""Superset's engines for the analytics databases, kept per process and pooled.

Superset 6.1.0 makes a new SQLAlchemy engine with a NullPool for every query
(`Database._get_sqla_engine`), so each forced chart request opened two new PostgreSQL
connections (the query's and its inspector's) and initialised the dialect on each: 28 % of the
request (benchmarks/request-split.json, issue 16). `keeping(create_engine)` is a create_engine
that gives back one engine per address and arguments in this process, with a small QueuePool:
- a connection is pinged when taken (one PgBouncer, a restart or a cancelled query closed is
  replaced, not handed out);
- a connection given back is rolled back and runs `DISCARD ALL`: nothing a query set in its
  session reaches the next, the reader role's settings (read only, statement_timeout, time
  zone) are in force again, as PgBouncer's `server_reset_query_always` does between clients;
- an address whose password changed gets a new engine and the old one is closed;
- at most KEPT engines, the least recently used closed; none is used across a fork (the
  child's are its own; its parent's are kept unclosed, their sockets are the parent's).
patches.keep_engines() puts it in Superset's place (superset_config.py's FLASK_APP_MUTATOR),
where internals checks the assumption ("engine-per-query").
"""
from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool, QueuePool

KEPT = 8  # engines per process: a database, per catalog/schema/user variant Superset asks for
POOL_SIZE = 2  # idle connections an engine keeps; more are opened under load and closed after
MAX_OVERFLOW = 30  # beyond POOL_SIZE at once (gunicorn's 8 threads, each a query and an inspector)


def keeping(create_engine: Callable[..., Any]) -> Callable[..., Any]:
    """`create_engine`, keeping its engines (a kept create_engine is returned as it is)."""
    if getattr(create_engine, "keeps_engines", False):
        return create_engine
    kept: OrderedDict[str, tuple[str, Any]] = OrderedDict()
    forked_away: list[Any] = []  # a parent's engines: referenced, never closed, in a child
    owner = [os.getpid()]
    lock = threading.Lock()

    def kept_create_engine(url: Any, **kwargs: Any) -> Any:
        url = make_url(url)
        arguments = {name: value for name, value in kwargs.items() if name != "poolclass"}
        if kwargs.get("poolclass", NullPool) is not NullPool or "pool" in arguments or "creator" in arguments:
            return create_engine(url, **kwargs)  # a pool of its own was asked for: as Superset made it
        try:
            key = json.dumps([url.drivername, url.username, url.host, url.port, url.database, dict(url.query),
                              arguments], sort_keys=True, default=_class_name)
        except TypeError:  # arguments that do not compare as text (objects): not kept
            return create_engine(url, **kwargs)
        password = url.password or ""
        with lock:
            if owner[0] != os.getpid():
                owner[0] = os.getpid()
                forked_away.extend(engine for _, engine in kept.values())
                kept.clear()
            if key in kept and kept[key][0] == password:
                kept.move_to_end(key)
                return kept[key][1]
            if key in kept:  # the password changed: its connections are closed, not reused
                kept.pop(key)[1].dispose()
            engine = create_engine(url, **arguments, poolclass=QueuePool, pool_size=POOL_SIZE,
                                   max_overflow=MAX_OVERFLOW, pool_pre_ping=True)
            event.listen(engine, "reset", _discard_session)
            kept[key] = (password, engine)
            while len(kept) > KEPT:
                kept.popitem(last=False)[1][1].dispose()
            return engine

    kept_create_engine.keeps_engines = True
    kept_create_engine.kept = kept
    return kept_create_engine


def _class_name(value: Any) -> str:
    """A class among the arguments (wall_clock's connection_factory) is known by its name."""
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    raise TypeError(f"{type(value).__name__} is not a class")


def _discard_session(connection: Any, record: Any) -> None:
    """On the way back to the pool: end the transaction and reset the session (DISCARD ALL runs
    outside a transaction). A failure here makes SQLAlchemy close the connection instead."""
    raw = getattr(connection, "dbapi_connection", connection)
    raw.rollback()
    raw.autocommit = True
    try:
        with raw.cursor() as cursor:
            cursor.execute("discard all")
    finally:
        raw.autocommit = False
