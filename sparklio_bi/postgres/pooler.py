"""PgBouncer (Debian's `pgbouncer`) in transaction pooling between Superset and the embedded
server, for the reader role only: its files in the data dir, the command `serve` supervises.

Every server connection is the reader's, so it starts with the role's settings (read only,
statement_timeout, idle timeout, time zone); after each transaction PgBouncer runs `DISCARD ALL`
(`server_reset_query_always`), so a setting one client changed can never reach the next.
Each serve runs a PgBouncer of its own on the one port (`so_reuseport`): two serves of one data
dir (two web nodes) share the port, and either stops without taking the other's pooler."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from sqlalchemy.engine import make_url

from sparklio_bi import config, datadir
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import embedded_pg

POOL_SIZE = 8  # server connections per pool: Superset's queries at once, beyond which they wait
MAX_CLIENTS = 400  # Superset's connections (NullPool: one per chart query while it runs)
CHOICES = ("auto", "pgbouncer", "none")


class PoolerError(ExpectedError):
    """PgBouncer was asked for and cannot run."""


def binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (str(p) for p in (Path("/usr/sbin/pgbouncer"), Path("/usr/bin/pgbouncer")) if p.exists()), None)


def enabled(settings: config.Settings) -> bool:
    """Whether Superset's analytics connection goes through the embedded pooler: `pgbouncer`
    always (refused when it is not installed), `auto` when installed and the server is embedded."""
    if settings.pooler == "none" or not settings.embedded or settings.reader_target_url:
        return False
    installed = binary() is not None
    if settings.pooler == "pgbouncer" and not installed:
        raise PoolerError("SPARKLIO_POOLER=pgbouncer but pgbouncer is not installed "
                          "(apt-get install pgbouncer, or SPARKLIO_POOLER=none)")
    return installed


def write_config(settings: config.Settings, server_url: str, reader_password: str, name: str,
                 listen: str = "127.0.0.1") -> Path:
    """The ini `pgbouncer-<name>.ini` (one per serve, or the one of `db pooler`) for the server
    of `server_url`, and the auth file (0600: it holds the reader's password), in the data dir,
    owned by the user PgBouncer runs as; returns the ini's path."""
    folder = settings.data_dir / datadir.POOLER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    users = _write_users(settings, reader_password)
    ini = folder / f"pgbouncer-{name}.ini"
    server = make_url(server_url)
    ini.write_text("\n".join([
        "[databases]",
        f"{server.database} = host={server.host or '127.0.0.1'} port={server.port or 5432} dbname={server.database}",
        "[pgbouncer]",
        f"listen_addr = {listen}",
        f"listen_port = {settings.pooler_port}",
        "so_reuseport = 1",
        "unix_socket_dir =",
        "auth_type = scram-sha-256",
        f"auth_file = {users}",
        f"server_tls_sslmode = {server.query.get('sslmode', 'prefer')}",  # as DATABASE_URL asks
        "pool_mode = transaction",
        f"default_pool_size = {POOL_SIZE}",
        f"max_client_conn = {MAX_CLIENTS}",
        "server_reset_query = DISCARD ALL",
        "server_reset_query_always = 1",
        "ignore_startup_parameters = extra_float_digits",
        f"logfile = {folder / f'pgbouncer-{name}.log'}",
        f"pidfile = {folder / f'pgbouncer-{name}.pid'}",
        "log_connections = 0",
        "log_disconnections = 0",
        "",
    ]))
    ini.chmod(0o600)
    user = embedded_pg.run_as()
    if user:  # as root: PgBouncer refuses root, and runs as the embedded server's user
        for path in (folder, users, ini):
            shutil.chown(path, user)
    return ini


def _write_users(settings: config.Settings, reader_password: str) -> Path:
    users = settings.data_dir / datadir.POOLER / "users.txt"
    datadir.write_secret(users, f'"{settings.reader_role}" "{reader_password}"')
    return users


def give_password(settings: config.Settings, reader_password: str) -> int:
    """A new reader password reaches the PgBouncers of this data dir that run now: their auth file
    is written again and each reloads it (SIGHUP; its server connections stay, new ones log in
    with it). Returns how many were told; 0 and nothing written when none runs."""
    import signal

    import psutil

    folder = settings.data_dir / datadir.POOLER
    running = []
    for pidfile in folder.glob("pgbouncer-*.pid") if folder.exists() else ():
        with contextlib.suppress(ValueError, OSError, psutil.Error):
            process = psutil.Process(int(pidfile.read_text().split()[0]))
            if str(folder) in " ".join(process.cmdline()):  # not a stale file's pid taken by another program
                running.append(process)
    if not running:
        return 0
    users = _write_users(settings, reader_password)
    user = embedded_pg.run_as()
    if user:
        shutil.chown(users, user)
    for process in running:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGHUP)
    return len(running)


def port_problem(settings: config.Settings) -> str | None:
    """Why PgBouncer could not listen on SPARKLIO_POOLER_PORT: taken by a program that is not
    one of this data dir's PgBouncers (those share it); None when it can."""
    import psutil

    if not embedded_pg.port_taken(settings.pooler_port):
        return None
    folder = str(settings.data_dir / datadir.POOLER)
    for process in embedded_pg.listeners(settings.pooler_port):
        with contextlib.suppress(psutil.Error):
            if folder in " ".join(process.cmdline()):
                return None
    return (f"SPARKLIO_POOLER_PORT {settings.pooler_port} is taken by another program: "
            "set another port, or SPARKLIO_POOLER=none")


def command(ini: Path) -> list[str]:
    """PgBouncer in the foreground (serve supervises it), logging to its file only."""
    found = binary()
    if found is None:
        raise PoolerError("pgbouncer is not installed (apt-get install pgbouncer, or SPARKLIO_POOLER=none)")
    return [found, "--quiet", str(ini)]
