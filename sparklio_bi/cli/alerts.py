"""`sparklio-bi alerts ...`: Superset's Alerts & Reports kept as YAML in alerts/."""
from __future__ import annotations

import os
from pathlib import Path

import click

from sparklio_bi.cli.base import main, settings

# The library (sqlglot, croniter, requests) is imported by each command, not here: every module of
# the group is loaded for any command, and `sparklio-bi db` runs with the database packages alone
# (tests/test_embedded_pg.py::test_runs_as_a_normal_user).


def _alerts_dir() -> Path:
    from sparklio_bi.superset.alerts import definition

    return definition.ALERTS_DIR


dir_option = click.option("--dir", "folder", type=click.Path(path_type=Path), default=_alerts_dir,
                          show_default="alerts/", help="The folder of alert and report files.")
url_option = click.option("--superset-url", default=None,
                          help="The running Superset (default http://SUPERSET_HOST:SUPERSET_PORT).")


@main.group("alerts")
def alerts_group() -> None:
    """Alerts and scheduled reports as code (alerts/*.yaml), through Superset's /api/v1/report/."""


@alerts_group.command("validate")
@dir_option
def alerts_validate(folder: Path) -> None:
    """Check every file offline: fields, cron, SQL (one SELECT of one value on analytics views
    only, calling only the functions a chart query may), that every recipient variable is set,
    at most SPARKLIO_ALERTS_MAX_RECIPIENTS recipients, and webhooks to public addresses only.

    Example: SPARKLIO_ALERT_EMAIL=ops@example.com sparklio-bi alerts validate
    """
    from sparklio_bi.superset.alerts import definition

    items = definition.load(folder)
    found = definition.problems(items, settings(), dict(os.environ))
    for problem in found:
        click.echo(problem, err=True)
    if found:
        raise definition.AlertsError(f"{len(found)} problem(s) in {folder}")
    click.echo(f"{folder}: {len(items)} valid ({sum(i.is_alert for i in items)} alerts, "
               f"{sum(not i.is_alert for i in items)} reports)")


@alerts_group.command("sync")
@dir_option
@url_option
@click.option("--prune", is_flag=True, help="Also remove the alerts and reports Superset holds that no file names.")
def alerts_sync(folder: Path, superset_url: str | None, prune: bool) -> None:
    """Create or update Superset's alerts and reports from the files, matched by name (a second
    sync changes nothing); an invalid folder changes nothing.

    Example: sparklio-bi alerts sync --prune
    """
    from sparklio_bi.superset.alerts import definition, sync

    s = settings()
    env = dict(os.environ)
    items = definition.checked(folder, s, env)
    sync.sync(sync.http_api(s, superset_url), items, env, s, prune=prune, say=click.echo)


@alerts_group.command("export")
@dir_option
@url_option
def alerts_export(folder: Path, superset_url: str | None) -> None:
    """Write Superset's alerts and reports into the folder, normalised (recipients as the names
    of the variables holding them).

    Example: sparklio-bi alerts export && git diff alerts/
    """
    from sparklio_bi.superset.alerts import sync

    s = settings()
    written = sync.export(sync.http_api(s, superset_url), folder, dict(os.environ), s)
    click.echo(f"{len(written)} files written to {folder}")


@alerts_group.command("run")
@click.argument("name")
@dir_option
def alerts_run(name: str, folder: Path) -> None:
    """Evaluate one alert now, as the read-only reader role, and say what it would send (nothing is sent).

    Example: sparklio-bi alerts run agent_failure_rate
    """
    from sparklio_bi.superset.alerts import definition, evaluate

    s = settings()
    env = dict(os.environ)
    item = evaluate.find(definition.checked(folder, s, env), name)
    outcome = evaluate.run(item, s, env)
    for line in outcome.lines(item.data.get("condition") if item.is_alert else None):
        click.echo(line)
