"""`sparklio-bi backup` and `restore`: one archive of what the bundle owns, and back."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from sparklio_bi.cli.base import main, settings, step


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Back up what the bundle owns into FILE (a new tar.gz, mode 0600): Superset's metadata
    database, the secrets of the data dir, the collector's samples and the service-metrics
    minutes, the embedded server's source tables, the alerts folder and a manifest with checksums.
    A pg_dump snapshot: run it while `serve` runs. The rollups are rebuilt on restore.

    Example: sparklio-bi backup backups/sparklio-$(date +%F).tar.gz
    """
    from sparklio_bi.ops import backup as archives

    manifest = archives.backup(settings(), file, step)
    click.echo(f"{file}: sparklio-bi {manifest['bundle_version']}, analytics at {manifest['migration']}, "
               f"{len(manifest['members'])} files")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Restore even though SPARKLIO_DATA_DIR is not empty: it is moved aside to "
                   "<dir>.replaced-<time> first (its embedded server stopped).")
def restore(file: Path, force: bool) -> None:
    """Restore a `sparklio-bi backup` archive into an empty SPARKLIO_DATA_DIR (its embedded server
    is made anew; or onto empty DATABASE_URL/SUPERSET_DATABASE_URL databases): checks the
    checksums, refuses an archive of a newer bundle, migrates an older one, rebuilds the rollups,
    then runs doctor's checks (exit 1 if one fails). Then `sparklio-bi serve`.

    Example: SPARKLIO_DATA_DIR=/srv/sparklio SPARKLIO_PG_PORT=5433 sparklio-bi restore sparklio-2026-12-07.tar.gz
    """
    from sparklio_bi.ops import backup as archives

    checks = archives.restore(settings(), file, force, step)
    for check in checks:
        note = "  (not counted: Superset holds what the archive held)" if check.name == "assets" and not check.ok else ""
        click.echo(check.line() + note)
    failed = [check.name for check in checks if not check.ok and check.name != "assets"]
    if failed:
        click.echo(f"Error: restored, but doctor's {', '.join(failed)} check(s) failed", err=True)
        sys.exit(1)
    click.echo("restored: start it with `sparklio-bi serve`")
