"""`sparklio-bi serve`: Superset under gunicorn, with the processes that keep its data current
(the rollup refresher, the system sampler), supervised: a child that dies is restarted with
backoff, every child dies with serve (even when serve is killed with SIGKILL: a parent-death
signal), a start-up error that will not go away stops serve, and a second serve on the same
port names the first. What serve's children are doing is kept in the data dir for `doctor`."""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sparklio_bi import config, datadir
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database, embedded_pg, pooler, privileges
from sparklio_bi.superset import app, secret_key

WORKER_BOOT_ERROR = 3  # gunicorn's exit status when a worker could not boot: it halts, not retries
BACKOFF_SECONDS = (1, 2, 5, 10, 30, 60)  # before the 1st, 2nd, ... restart in a row
STABLE_SECONDS = 60  # a child that ran this long starts its backoff afresh when it dies
QUICK_FAILURES = 5  # gunicorn dying this often in a row, each within STABLE_SECONDS: serve stops
PR_SET_PDEATHSIG = 1


class ServeError(ExpectedError):
    """The server cannot start, or stopped on its own."""


def server_command(host: str, port: int, workers: int, data_dir: Path) -> list[str]:
    """Gunicorn serving Superset, as Superset's own docker image does; its control socket lives
    in the data dir (one per install, not one path shared by every instance on the host)."""
    return [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"{host}:{port}",
            "--control-socket", str(datadir.gunicorn_socket(data_dir, port)),
            "--workers", str(workers), "--worker-class", "gthread", "--threads", "8",
            "--timeout", "120", "--limit-request-line", "0", "--limit-request-field_size", "0",
            "superset.app:create_app()"]


def _die_with_parent() -> None:
    """In a child, before exec: SIGTERM when serve dies, however it dies (Linux)."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # serve died before the signal was armed
        os._exit(1)


@dataclass
class Child:
    """One supervised process: what runs it, and what happened to it (kept for doctor)."""

    name: str
    command: list[str]
    env: dict[str, str] | None = field(default=None, repr=False)
    user: str | None = None  # the system user it runs as (PgBouncer, as root: the embedded server's)
    pid: int | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    last_exit: int | None = None
    last_exit_at: float | None = None
    restart_at: float | None = None  # when it is down: when it starts again
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        stdout = subprocess.DEVNULL if self.name != "gunicorn" else None
        self._process = subprocess.Popen(self.command, env=self.env, stdout=stdout, user=self.user,
                                         preexec_fn=_die_with_parent)
        self.pid, self.started_at, self.restart_at = self._process.pid, time.time(), None

    def poll(self) -> int | None:
        """Its exit status once it has stopped (and is not yet restarted), else None."""
        if self._process is None or self.restart_at is not None:
            return None
        code = self._process.poll()
        if code is not None:
            ran = time.time() - self.started_at
            self.failures_in_a_row = 0 if ran >= STABLE_SECONDS else self.failures_in_a_row + 1
            self.last_exit, self.last_exit_at, self.pid = code, time.time(), None
            backoff = BACKOFF_SECONDS[min(max(self.failures_in_a_row - 1, 0), len(BACKOFF_SECONDS) - 1)]
            self.restart_at = time.time() + backoff
        return code

    def due(self) -> bool:
        return self.restart_at is not None and time.time() >= self.restart_at

    def stop(self, timeout: float = 40) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def state(self) -> dict:
        kept = ("name", "pid", "started_at", "restarts", "last_exit", "last_exit_at", "restart_at")
        return {**{name: getattr(self, name) for name in kept}, "up": self.pid is not None}


def status_file(data_dir: Path, port: int) -> Path:
    return datadir.serve_state(data_dir, port)


def lock_file(data_dir: Path, port: int) -> Path:
    return datadir.serve_lock(data_dir, port)


@contextlib.contextmanager
def serve_lock(data_dir: Path, port: int) -> Iterator[None]:
    """Held while serve runs on this port (the kernel drops it when serve dies, SIGKILL too); a
    second serve is told the first one's pid."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = lock_file(data_dir, port)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise ServeError(_already_served(holder, port, data_dir)) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        status_file(data_dir, port).unlink(missing_ok=True)
        handle.close()


def _already_served(pid, port: int, data_dir: Path) -> str:
    return f"sparklio-bi serve (pid {pid}) already serves port {port} from {data_dir}: stop it (kill {pid}) or pass --port"


def running_serve(data_dir: Path, port: int) -> int | None:
    """The pid of the serve that holds this port's lock (None: no serve runs on it)."""
    path = lock_file(data_dir, port)
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
    return None


def who_holds(port: int) -> str:
    """What listens on the port, named when it is an orphan of an earlier serve."""
    import psutil

    for process in embedded_pg.listeners(port):
        with contextlib.suppress(psutil.Error, OSError):
            pid, command = process.pid, " ".join(process.cmdline())
            if "gunicorn" in command and "superset.app:create_app()" in command:
                while (parent := process.parent()) and parent.cmdline() == process.cmdline():
                    process = parent  # a worker shares the socket: name its master
                return (f"a gunicorn serving Superset (pid {process.pid}) that no sparklio-bi serve supervises "
                        f"(left by an earlier one): stop it with `kill {process.pid}`")
            return f"another program (pid {pid}: {command[:80]}): stop it or pass --port"
    return "another program: stop it or pass --port"


def check_can_start(settings: config.Settings, host: str, port: int) -> None:
    """Everything that would make gunicorn fail on every start, checked before it starts."""
    if not 1 <= port <= 65535:
        raise ServeError(f"--port {port} is not a port number (1-65535)")
    pid = running_serve(settings.data_dir, port)
    if pid:
        raise ServeError(_already_served(pid, port, settings.data_dir))
    if embedded_pg.port_taken(port, host):
        raise ServeError(f"port {port} on {host} is taken by {who_holds(port)}")
    problem = pooler.port_problem(settings) if pooler.enabled(settings) else None
    if problem:
        raise ServeError(problem)
    problem = secret_key.startup_problem(settings)
    if problem:
        raise ServeError(problem)


def _own_child(name: str, *args: str) -> Child:
    return Child(name, [sys.executable, "-m", "sparklio_bi.cli", *args])


def celery_command(role: str, data_dir: Path) -> list[str]:
    """Superset's Celery worker or beat (what runs Alerts & Reports), as its docker image runs them;
    beat keeps its schedule in the data dir."""
    celery = [str(Path(sys.executable).parent / "celery"), "--app=superset.tasks.celery_app:app"]
    if role == "worker":
        return [*celery, "worker", "--pool=prefork", "--concurrency=2", "-O", "fair", "--loglevel=WARNING"]
    return [*celery, "beat", "--schedule", str(data_dir / datadir.CELERY_BEAT_SCHEDULE), "--loglevel=WARNING"]


def serve(settings: config.Settings, host: str, port: int, workers: int, collect_interval: float,
          say: Callable[[str], None], celery: bool = True) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM stop everything started here); ServeError when
    Superset cannot start or keeps failing. With REDIS_URL (and `celery`), Superset's Celery
    worker and beat run beside gunicorn: Alerts & Reports."""
    check_can_start(settings, host, port)
    if not settings.superset_database_url:
        database.analytics_url(settings)  # starts the embedded server (Superset's metadata) if it is down
    children = [Child("gunicorn", server_command(host, port, workers, settings.data_dir),
                      env=app.environment(settings)),
                _own_child("rollups", "rollups", "refresh", "--every", f"{settings.refresh_seconds:g}")]
    if pooler.enabled(settings):  # Superset's analytics connection goes through it: it starts first
        ini = pooler.write_config(settings, embedded_pg.server_url(settings), privileges.reader_password(settings),
                                  str(port))
        children.insert(0, Child("pgbouncer", pooler.command(ini), user=embedded_pg.run_as()))
    if collect_interval:
        children.append(_own_child("collector", "collect", "--interval", str(collect_interval)))
    if settings.redis_url and celery:
        # the worker's screenshots and links go to this serve's own web server
        here = {**app.environment(settings), "SUPERSET_HOST": host, "SUPERSET_PORT": str(port)}
        children += [Child(f"celery-{role}", celery_command(role, settings.data_dir), env=here)
                     for role in ("worker", "beat")]
    signal.signal(signal.SIGTERM, _interrupt)  # stop the children on `kill` as on Ctrl-C
    with serve_lock(settings.data_dir, port):
        say(f"Superset on http://{host}:{port}/ (Ctrl-C to stop)")
        try:
            for child in children:
                child.start()
            supervise(children, status_file(settings.data_dir, port), say)
        except KeyboardInterrupt:
            pass
        finally:
            for child in reversed(children):
                child.stop()


def supervise(children: list[Child], status: Path, say: Callable[[str], None], tick: float = 0.5) -> None:
    """Restart children that stop, with backoff, until interrupted; ServeError when gunicorn
    could not boot Superset or keeps dying as soon as it starts."""
    _write_status(status, children)
    while True:
        changed = False
        for child in children:
            code = child.poll()
            if code is not None:
                changed = True
                if child.name == "gunicorn" and code == WORKER_BOOT_ERROR:
                    raise ServeError("Superset could not start: its workers failed to boot (the error is above)")
                if child.name == "gunicorn" and child.failures_in_a_row >= QUICK_FAILURES:
                    raise ServeError(f"Superset (gunicorn) stopped {child.failures_in_a_row} times in a row "
                                     f"right after starting (status {code}): see its output above")
                say(f"{child.name} stopped with status {code}: restarting in "
                    f"{child.restart_at - time.time():.0f}s (restart {child.restarts + 1})")
            elif child.due():
                child.restarts += 1
                child.start()
                changed = True
                say(f"{child.name} restarted (pid {child.pid})")
        if changed:
            _write_status(status, children)
        time.sleep(tick)


def _write_status(path: Path, children: list[Child]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), "updated_at": time.time(),
                                     "children": [child.state() for child in children]}))
    temporary.replace(path)


def serve_status(data_dir: Path) -> list[dict]:
    """What each running serve of this data dir says of its children: [{port, pid, children}]."""
    found = []
    for path in sorted(data_dir.glob("serve-*.json")):
        port = int(path.stem.split("-", 1)[1])
        if running_serve(data_dir, port):
            with contextlib.suppress(OSError, ValueError):
                found.append({"port": port, **json.loads(path.read_text())})
    return found


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
