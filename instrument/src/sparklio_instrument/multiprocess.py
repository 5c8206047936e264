"""Several workers, one view: prometheus-client's multiprocess mode, on when PROMETHEUS_MULTIPROC_DIR is set.

Each worker writes its metrics into its own files in that directory; a scrape answered by any worker reads
them all (MultiProcessCollector), so /metrics reports the sum over the workers. The directory is emptied
when gunicorn starts (counts of an earlier run would add up otherwise) and a dead worker's live gauges are
dropped when it exits; its counters stay, so a replaced worker loses nothing that was counted.

In the gunicorn config (the example's gunicorn.conf.py does this):

    from sparklio_instrument.multiprocess import child_exit, on_starting  # noqa: F401
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

# The files prometheus-client writes: counter_<pid>.db, histogram_<pid>.db, gauge_livesum_<pid>.db, ...
METRIC_FILE = re.compile(r"[a-z]+(_[a-z]+)?_\d+\.db")
_serving: CollectorRegistry | None = None


def directory() -> Path | None:
    """The multiprocess directory, or None when this process is the only one that counts."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def registry() -> CollectorRegistry:
    """What /metrics serves: every worker's files under multiprocess mode, else this process's registry."""
    global _serving
    if directory() is None:
        return REGISTRY
    if _serving is None:
        _serving = CollectorRegistry()
        multiprocess.MultiProcessCollector(_serving)
    return _serving


def wipe(path: Path) -> list[Path]:
    """Delete the metric files of an earlier run from `path` (created if missing); returns what it left there."""
    path.mkdir(parents=True, exist_ok=True)
    left = []
    for entry in sorted(path.iterdir()):
        if entry.is_file() and METRIC_FILE.fullmatch(entry.name):
            entry.unlink()
        else:
            left.append(entry)
    return left


def on_starting(server) -> None:
    """gunicorn hook (master, before the first worker): empty the multiprocess directory."""
    path = directory()
    if path is None:
        server.log.warning("PROMETHEUS_MULTIPROC_DIR is not set: each worker's /metrics shows only its own requests")
        return
    for entry in wipe(path):
        server.log.warning("left %s in %s: not a prometheus-client metric file, so not ours to delete", entry.name, path)


def child_exit(server, worker) -> None:
    """gunicorn hook (master, a worker has exited): drop its live gauges; its counters stay in the sum."""
    if directory() is not None:
        multiprocess.mark_process_dead(worker.pid)
