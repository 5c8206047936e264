"""gunicorn settings for the example: two uvicorn workers counting into one multiprocess directory."""
import os
import tempfile
from pathlib import Path

# Before anything imports prometheus_client: it picks its multiprocess value store at import time.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / "sparklio-api-metrics"))

from sparklio_instrument.multiprocess import child_exit, on_starting  # noqa: E402, F401  (gunicorn's hooks)

pythonpath = str(Path(__file__).resolve().parent)
wsgi_app = "app:app"
bind = os.environ.get("SPARKLIO_API_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SPARKLIO_API_WORKERS", "2"))
worker_class = "uvicorn.workers.UvicornWorker"
