"""`sparklio-bi serve`: Superset under gunicorn, with the processes that keep its data current
(the rollup refresher, the system sampler) started beside it and stopped with it."""
from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from . import config, database, embedded_pg, superset_app
from .errors import BundleError

ROLLUP_REFRESH_SECONDS = 30  # with the 30 s chart cache: a late row shows within a minute


class ServeError(BundleError):
    """The server cannot start, or stopped on its own."""


def server_command(host: str, port: int, workers: int, data_dir: Path) -> list[str]:
    """Gunicorn serving Superset, as Superset's own docker image does; its control socket lives
    in the data dir (one per install, not one path shared by every instance on the host)."""
    return [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"{host}:{port}",
            "--control-socket", str(data_dir / f"gunicorn-{port}.ctl"),
            "--workers", str(workers), "--worker-class", "gthread", "--threads", "8",
            "--timeout", "120", "--limit-request-line", "0", "--limit-request-field_size", "0",
            "superset.app:create_app()"]


def start_server(host: str, port: int, workers: int, data_dir: Path) -> subprocess.Popen:
    """Start the web server in the background; the caller waits on or stops the process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(server_command(host, port, workers, data_dir), env=superset_app.environment())


def _bundle_command(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sparklio_bi.cli", *args], stdout=subprocess.DEVNULL)


def serve(settings: config.Settings, host: str, port: int, workers: int, collect_interval: float,
          say: Callable[[str], None]) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM stop everything started here); ServeError when
    the port is unusable or gunicorn stops on its own."""
    if not 1 <= port <= 65535:
        raise ServeError(f"--port {port} is not a port number (1-65535)")
    if embedded_pg.port_taken(port, host):
        raise ServeError(f"port {port} on {host} is taken by another program: stop it or pass --port")
    if not settings.superset_database_url:
        database.analytics_url(settings)  # starts the embedded server (Superset's metadata) if it is down
    helpers = [_bundle_command("rollups", "refresh", "--every", str(ROLLUP_REFRESH_SECONDS))]
    if collect_interval:
        helpers.append(_bundle_command("collect", "--interval", str(collect_interval)))
    say(f"Superset on http://{host}:{port}/ (Ctrl-C to stop)")
    server = start_server(host, port, workers, settings.data_dir)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the children on `kill` as on Ctrl-C
    try:
        code = server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait()
        code = 0
    finally:
        for helper in helpers:
            helper.terminate()
    if code:
        raise ServeError(f"Superset (gunicorn) stopped with status {code}: see its output above")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
