"""`sparklio-bi metrics serve`: the Prometheus exporter of the analytics KPIs."""
from __future__ import annotations

import threading
from pathlib import Path

import click

from sparklio_bi.cli.base import main, settings, step


@main.group()
def metrics() -> None:
    """Prometheus metrics of the analytics KPIs.

    Example: sparklio-bi metrics serve --port 9610
    """


@metrics.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", type=click.IntRange(1, 65535), default=9610, show_default=True, help="Port of /metrics.")
@click.option("--interval", type=click.FloatRange(min=1), default=15, show_default=True,
              help="Seconds between two rounds of queries; scrapes in between read the last round.")
def serve(host: str, port: int, interval: float) -> None:
    """Serve /metrics: one round of queries per interval as the read-only reader role.

    Example: sparklio-bi metrics serve --port 9610 --interval 15
    """
    from sparklio_bi.ops import metrics as exporter

    s = settings()
    running = exporter.start(lambda: exporter.reader_url(s), s, port, host, interval)
    failed = [name for name, count in running.collector.query_errors.items() if count]
    step(f"metrics on http://{host}:{running.port}/metrics, a round every {interval:g} s "
         f"(first round {running.collector.round_seconds:.3f} s" + (f", failed: {', '.join(failed)})" if failed else ")"))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@metrics.command("alertmanager-config")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the rendered configuration (mode 0600).")
@click.option("--template", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The template to render.  [default: monitoring/alertmanager.yml]")
def alertmanager_config(output: Path, template: Path | None) -> None:
    """Render Alertmanager's configuration from its template and the ALERT_* settings.

    Example: ALERT_EMAIL_TO=ops@example.com ... sparklio-bi metrics alertmanager-config --output /tmp/am.yml
    """
    from sparklio_bi.ops import alert_routes

    written = alert_routes.write(settings(), output, template or alert_routes.TEMPLATE)
    step(f"Alertmanager configuration written to {written}")
