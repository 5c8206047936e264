"""A hot standby of the embedded server, by streaming replication over loopback from the embedded
binaries (`pg_basebackup -R`, then `pg_ctl start`): where SPARKLIO_READER_URL can point Superset
while migrations, seeding and the rollup refresh write to the primary; and how far behind it is."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database, embedded_pg


class StandbyError(ExpectedError):
    """The standby could not be made or started."""


@dataclass(frozen=True)
class Lag:
    """How far a server Superset reads is behind the primary: None when it is not a standby."""

    in_recovery: bool
    behind_bytes: int | None = None  # WAL the primary has written that the standby has not replayed
    replay_delay_seconds: float | None = None  # the primary's view of it (pg_stat_replication), when visible


def create(settings: config.Settings, folder: Path, port: int) -> str:
    """A standby of the running embedded server in `folder` (new or empty), started on `port`;
    returns the owner's URL on it (the same role and password: they are replicated)."""
    if folder.exists() and any(folder.iterdir()):
        raise StandbyError(f"{folder} is not empty: a standby is made in a new folder")
    if embedded_pg.port_taken(port):
        raise StandbyError(f"port {port} is taken by another program")
    if not embedded_pg.status(settings).running:
        raise StandbyError("the embedded server is not running: sparklio-bi db start")
    user = embedded_pg.run_as()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if user:  # as root: the standby runs as the embedded server's system user, which must reach it
        embedded_pg.grant_traverse(folder)
        shutil.chown(folder, user)
    env = dict(os.environ, PGPASSWORD=embedded_pg.superuser_password(settings))
    copied = embedded_pg.run_binary("pg_basebackup", "-h", embedded_pg.HOST, "-p", str(settings.pg_port),
                                    "-U", embedded_pg.SUPERUSER, "-D", str(folder), "-R", "-X", "stream", "-c", "fast",
                                    env=env, user=user, timeout=600)
    if copied.returncode != 0:
        raise StandbyError(f"pg_basebackup failed: {copied.stderr.strip().splitlines()[-1:]}")
    log = folder / "standby.log"
    options = f"-p {port} -c listen_addresses={embedded_pg.HOST} -c hot_standby=on"
    started = embedded_pg.run_binary("pg_ctl", "-D", str(folder), "-l", str(log), "-o", options, "-w", "-t", "60",
                                     "start", user=user, timeout=90)
    if started.returncode != 0:
        raise StandbyError(f"the standby did not start: {started.stderr.strip() or log.read_text()[-300:]}")
    return make_url(embedded_pg.server_url(settings)).set(port=port).render_as_string(hide_password=False)


def stop(folder: Path) -> None:
    embedded_pg.run_binary("pg_ctl", "-D", str(folder), "-m", "fast", "-w", "stop", user=embedded_pg.run_as(), timeout=90)


def lag(primary_url: str, reader_url: str) -> Lag:
    """How far the server of `reader_url` (as the reader) is behind the primary (as its owner)."""
    with database.connect(reader_url) as conn, conn.cursor() as cur:
        cur.execute("select pg_is_in_recovery()")
        if not cur.fetchone()[0]:
            return Lag(in_recovery=False)
        cur.execute("select pg_last_wal_replay_lsn()")
        replayed = cur.fetchone()[0]
    with database.connect(primary_url) as conn, conn.cursor() as cur:
        cur.execute("select pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (replayed,))
        behind = max(int(cur.fetchone()[0]), 0)
        cur.execute("select extract(epoch from max(replay_lag)) from pg_stat_replication")
        delay = cur.fetchone()[0]
    return Lag(True, behind, float(delay) if delay is not None else None)

