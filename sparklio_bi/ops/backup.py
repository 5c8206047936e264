"""`sparklio-bi backup` and `restore`: one archive (tar.gz, 0600) of what the bundle owns and cannot
rebuild, and the way back from it onto an empty data dir.

The archive holds Superset's metadata database (pg_dump, custom format: one snapshot), one dump of
the analytics database's tables kept (the collector's samples, the service-metrics sink's minutes
and, with the embedded server only, the source tables: it is the bundle's own server), the data
dir's secrets, the alerts folder and manifest.json (versions, time zone, sha256 of every member).
The rollups are not in it: `refresh --full` rebuilds them from the rows, exactly, in less time than
their dump would take to restore. With DATABASE_URL the source tables are Sparklio's and never in it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from packaging.version import Version
from sqlalchemy.engine import make_url

from sparklio_bi import config, datadir
from sparklio_bi.errors import ExpectedError
from sparklio_bi.ops import doctor
from sparklio_bi.postgres import database, embedded_pg, pooler, privileges
from sparklio_bi.superset import app, assets, internals, setup
from sparklio_bi.superset.alerts import definition
from sparklio_bi.warehouse import migrate, rollup_zone, rollups, views

FORMAT = 1  # the archive's layout; a newer one is refused
MANIFEST = "manifest.json"
METADATA_DUMP = "superset.dump"  # Superset's metadata database, whole
TABLES_DUMP = "analytics.dump"  # the analytics database's tables below, one snapshot
SECRETS = (datadir.SECRET_KEY, datadir.PG_PASSWORD, datadir.READER_PASSWORD, datadir.ADMIN_PASSWORD)
# analytics tables only the bundle writes and nothing can rebuild (the sink's quarter hours and
# routes are rebuilt by its triggers as the minutes are restored; its retention row by its writers)
KEPT_TABLES = ("system_samples", "service_request_minutes", "service_metric_minutes")
ALERTS_RESTORED = "alerts-from-backup"  # where restore puts the archived alerts folder (alerts/ is git's)
NOT_SERVING = ("superset", "collector", "serve", "alerts")  # doctor's checks of a serve: restore ends before one

Say = Callable[[str], None]


class BackupError(ExpectedError):
    """A backup or restore that cannot be done; nothing was left half done."""


def bundle_version() -> str:
    return version("sparklio-bi")  # pyproject.toml's, as installed


def superset_version() -> str:
    return version("apache-superset")


def backup(settings: config.Settings, out: Path, say: Say = lambda line: None) -> dict:
    """Write the archive to `out` (refused if it exists); returns its manifest."""
    out = out.resolve()
    if out.exists() or not out.parent.is_dir():
        raise BackupError(f"{out} exists: give a new file name (nothing is overwritten)" if out.exists() else
                          f"{out.parent} is not a directory")
    url = database.analytics_url(settings)  # starts the embedded server when it is stopped
    metadata_url = database.superset_metadata_url(settings)
    revision, superset_revision = migrate.current(url, settings), _superset_revision(metadata_url)
    if revision is None or superset_revision is None:
        raise BackupError("nothing to back up: run `sparklio-bi bootstrap` first")
    tables = _present(url, settings)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        staging = Path(tmp)
        started = time.monotonic()
        say("Superset's metadata database (pg_dump, one snapshot)")
        _pg_dump(metadata_url, staging / METADATA_DUMP)
        say(f"{len(tables)} tables of the analytics database (pg_dump, one snapshot): {', '.join(tables)}")
        _pg_dump(url, staging / TABLES_DUMP, tables)
        if migrate.current(url, settings) != revision:
            raise BackupError("the analytics database was migrated during the backup: run it again")
        for name in SECRETS:
            if (settings.data_dir / name).exists():
                _copy(settings.data_dir / name, staging / "secrets" / name)
        for path in sorted(definition.ALERTS_DIR.glob("*.yaml")):
            _copy(path, staging / "alerts" / path.name)
        members = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        manifest = {
            "format": FORMAT, "bundle_version": bundle_version(), "migration": revision,
            "superset_version": superset_version(), "superset_migration": superset_revision,
            "timezone": settings.timezone, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "embedded": settings.embedded, "analytics_schema": settings.analytics_schema,
            "source_schema": settings.source_schema, "tables": tables,
            "members": {rel: {"sha256": _sha256(staging / rel), "bytes": (staging / rel).stat().st_size}
                        for rel in members},
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        say(f"writing {out} ({len(members)} files, {sum(m['bytes'] for m in manifest['members'].values()):,} bytes, "
            f"dumped in {time.monotonic() - started:.0f}s)")
        _write_archive(staging, [MANIFEST, *members], out)
    return manifest


def _present(url: str, settings: config.Settings) -> list[str]:
    """schema.table of every table the archive takes that this database has."""
    wanted = [f"{settings.analytics_schema}.{t}" for t in KEPT_TABLES]
    if settings.embedded:
        wanted += [f"{settings.source_schema}.{t}" for t in views.SOURCE_TABLES]
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select name from unnest(%s::text[]) name where to_regclass(name) is not null", (wanted,))
        return [row[0] for row in cur.fetchall()]


def _superset_revision(metadata_url: str) -> str | None:
    """Superset's own Alembic revision in its metadata database (None: no Superset there yet)."""
    try:
        with database.connect(metadata_url) as conn, conn.cursor() as cur:
            cur.execute("select to_regclass('alembic_version') is not null")
            if cur.fetchone()[0]:
                cur.execute("select max(version_num) from alembic_version")
                return cur.fetchone()[0]
    except database.DatabaseError:
        pass
    return None


def _client_args(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump/pg_restore, the password in the environment (never in argv)."""
    parsed = make_url(url)
    args = [f"--host={parsed.host or '127.0.0.1'}", f"--port={parsed.port or 5432}",
            f"--username={parsed.username}", f"--dbname={parsed.database}"]
    env = dict(os.environ, PGPASSWORD=parsed.password or "", PGCONNECT_TIMEOUT="10", PGAPPNAME="sparklio-bi")
    return args, env


def _run(binary: str, url: str, *args: str, timeout: float = 3600) -> str:
    connection, env = _client_args(url)
    done = embedded_pg.run_binary(binary, *connection, *args, env=env, timeout=timeout)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise BackupError(f"{binary} failed: {lines[0] if lines else f'status {done.returncode}'}")
    return done.stdout


def _pg_dump(url: str, target: Path, tables: list[str] | None = None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _run("pg_dump", url, "--format=custom", f"--file={target}", *[f"--table={t}" for t in tables or []])
    target.chmod(0o600)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    datadir.write_secret(target, "")  # 0600 from its first byte
    shutil.copyfile(source, target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_archive(staging: Path, members: list[str], out: Path) -> None:
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw, \
            tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for rel in members:
            info = archive.gettarinfo(staging / rel, arcname=rel)
            info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
            with open(staging / rel, "rb") as handle:
                archive.addfile(info, handle)
    partial.rename(out)


def open_archive(archive: Path, into: Path) -> dict:
    """Extract `archive` into `into` and return its manifest once every member is known, none is
    missing and each has the checksum the manifest gives (else BackupError: tampered or damaged)."""
    if not archive.is_file():
        raise BackupError(f"{archive} is not a file")
    found: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if not member.isfile() or not _allowed(member.name):
                    raise BackupError(f"{archive}: unexpected member {member.name!r}: not a sparklio-bi backup")
                target = into / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with tar.extractfile(member) as source, open(target, "wb") as sink:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        digest.update(block)
                        sink.write(block)
                target.chmod(0o600)
                found[member.name] = digest.hexdigest()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"{archive} is not a readable tar.gz archive ({exc})") from None
    try:
        manifest = json.loads((into / MANIFEST).read_text())
        listed = {rel: entry["sha256"] for rel, entry in manifest["members"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise BackupError(f"{archive} has no readable {MANIFEST}: not a sparklio-bi backup") from None
    found.pop(MANIFEST)
    wrong = sorted(rel for rel in set(found) | set(listed) if found.get(rel) != listed.get(rel))
    if wrong:
        raise BackupError(f"{archive} fails its checksums ({', '.join(wrong)} missing or changed): "
                          f"damaged or tampered with, nothing restored")
    return manifest


def _allowed(name: str) -> bool:
    parts = name.split("/")
    return name in (MANIFEST, METADATA_DUMP, TABLES_DUMP) or \
        (len(parts) == 2 and (parts[0] == "secrets" and parts[1] in SECRETS or
                              parts[0] == "alerts" and parts[1].endswith(".yaml")))


def refusal(manifest: dict) -> str | None:
    """Why this bundle may not restore the archive (None: it may)."""
    try:
        theirs, ours = Version(manifest["bundle_version"]), Version(bundle_version())
        superset = Version(manifest["superset_version"])
        if manifest["format"] > FORMAT or theirs > ours:
            return (f"the archive is from sparklio-bi {theirs}, newer than this one ({ours}): "
                    f"restore it with that version or newer")
    except (KeyError, TypeError, ValueError):
        return "its manifest lacks the versions it must give: not a sparklio-bi backup"
    if superset > Version(superset_version()):
        return f"the archive holds Superset {superset}'s metadata, newer than this Superset ({superset_version()})"
    if manifest.get("migration") not in {revision for revision, _, _ in migrate.history()}:
        return f"its analytics migration {manifest.get('migration')!r} is not in this bundle's history"
    return None


# --- restore -----------------------------------------------------------------------------------

def restore(settings: config.Settings, archive: Path, force: bool = False,
            say: Say = lambda line: None) -> list[doctor.Check]:
    """Restore `archive` onto an empty data dir (moved aside first with `force`), migrate, rebuild
    the rollups; returns doctor's checks (but NOT_SERVING). Bad input is refused before anything
    is touched; a failure on the way removes what it made and puts a moved-aside data dir back."""
    archive = archive.resolve()
    settings.data_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir.parent, prefix=".sparklio-restore-") as tmp:
        staging = Path(tmp)
        say(f"reading {archive} (checksums)")
        manifest = open_archive(archive, staging)
        problem = refusal(manifest) or _unfit(settings, manifest, staging)
        if problem:
            raise BackupError(f"{archive}: {problem}; nothing restored")
        aside = _clear_target(settings, force)
        try:
            with embedded_pg.data_dir_lock(settings, "restore", wait=False):
                return _restore(settings, staging, manifest, say)
        except BaseException:
            _undo(settings, aside)
            raise


def _unfit(settings: config.Settings, manifest: dict, staging: Path) -> str | None:
    """Why this install cannot take the archive (None: it can)."""
    key = staging / "secrets" / datadir.SECRET_KEY
    if (manifest.get("analytics_schema"), manifest.get("source_schema")) != (settings.analytics_schema,
                                                                            settings.source_schema):
        return f"it was taken with ANALYTICS_SCHEMA={manifest.get('analytics_schema')} and SOURCE_SCHEMA=" \
               f"{manifest.get('source_schema')}: set them so"
    if settings.embedded and not manifest.get("embedded"):
        return "it was taken with DATABASE_URL and holds no source tables: restore it with DATABASE_URL set"
    if key.exists() and settings.secret_key and settings.secret_key != key.read_text().strip():
        return "SUPERSET_SECRET_KEY is set to another key than the archive's: unset it (the archive's is restored)"
    if not key.exists() and not settings.secret_key:
        return "it holds no secret key (taken outside demo mode): set SUPERSET_SECRET_KEY to the key it was taken with"
    if not settings.embedded:
        url = database.analytics_url(settings)
        if migrate.current(url, settings) is not None:
            return f"DATABASE_URL's schema {settings.analytics_schema} is installed already: restore onto a new one"
        if _superset_revision(database.superset_metadata_url(settings)):
            return "SUPERSET_DATABASE_URL's database holds Superset's tables already: restore onto an empty one"
    return None


def _clear_target(settings: config.Settings, force: bool) -> Path | None:
    """Refuse a data dir that is not empty, or with `force` move it aside; returns where to."""
    data_dir = settings.data_dir
    if not data_dir.exists() or not any(data_dir.iterdir()):
        return None
    if not force:
        raise BackupError(f"{data_dir} is not empty: restore into an empty SPARKLIO_DATA_DIR, or --force to "
                          f"move it aside first; nothing restored")
    if embedded_pg.status(settings).running:
        raise BackupError(f"the embedded server on {data_dir} is running: `sparklio-bi db stop` (and stop serve) "
                          f"before --force; nothing restored")
    aside = data_dir.with_name(f"{data_dir.name}.replaced-{datetime.now():%Y%m%d-%H%M%S}")
    data_dir.rename(aside)
    return aside


def _undo(settings: config.Settings, aside: Path | None) -> None:
    """After a failed restore (embedded only): its server stopped, its data dir gone, the old one back."""
    if not settings.embedded:
        return
    with contextlib.suppress(ExpectedError):
        embedded_pg.stop(settings)
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    if aside is not None:
        aside.rename(settings.data_dir)


def _restore(settings: config.Settings, staging: Path, manifest: dict, say: Say) -> list[doctor.Check]:
    a, revision = settings.analytics_schema, manifest["migration"]
    say(f"an archive of sparklio-bi {manifest['bundle_version']} taken {manifest['created_at']}: analytics at "
        f"{revision}, Superset {manifest['superset_version']}, time zone {manifest['timezone']}")
    if manifest["timezone"] != settings.timezone:
        say(f"    SPARKLIO_TIMEZONE is {settings.timezone}: the rollups are rebuilt in it, not in {manifest['timezone']}")
    secrets = {name: (staging / "secrets" / name).read_text().strip()
               for name in SECRETS if (staging / "secrets" / name).exists()}
    for name, value in secrets.items():
        if name != datadir.PG_PASSWORD:  # the server's own is written by initdb, below
            datadir.write_secret(settings.data_dir / name, value)
    say(f"1/5 PostgreSQL: {'a new embedded server in ' + str(settings.pg_dir) if settings.embedded else 'DATABASE_URL'}")
    if settings.embedded:
        embedded_pg.start(dataclasses.replace(settings, pg_password=settings.pg_password or secrets.get(datadir.PG_PASSWORD)))
    url = database.analytics_url(settings)
    toc = _toc(staging / TABLES_DUMP)
    if settings.embedded:
        say(f"2/5 source tables: {', '.join(t for t in manifest['tables'] if not t.startswith(a + '.'))} (pg_restore)")
        _pg_restore(url, staging / TABLES_DUMP, [e for e in toc if e[1] == settings.source_schema])
    else:
        say("2/5 source tables: the application's own (DATABASE_URL), never restored")
    say(f"3/5 analytics: migrating to {revision}, the kept rows, then to head ({migrate.head()})")
    migrate.upgrade(url, settings, revision)
    _pg_restore(url, staging / TABLES_DUMP, [e for e in toc if e[1] == a and e[0] in ("TABLE DATA", "SEQUENCE SET")])
    migrate.upgrade(url, settings)
    rollup_zone.ensure_timezone(url, settings)
    privileges.ensure_login(url, settings, lambda line: say(f"    {line.strip()}"))
    say("4/5 Superset's metadata database (pg_restore, then Superset's migrations)")
    metadata_url = database.superset_metadata_url(settings)
    database.ensure_database(metadata_url)
    _pg_restore(metadata_url, staging / METADATA_DUMP, None)
    with app.app_context(settings):
        internals.require_unchanged()
        setup.upgrade_metadata()
        setup.sync_roles()
        assets.import_bundle(assets.ASSETS_DIR, privileges.superset_url(url, settings), settings,
                             kinds=("databases",), server_uri=privileges.server_url(url, settings))
    say("5/5 rollups: rebuilt from the rows (refresh --full)")
    started = time.monotonic()
    rollups.refresh_in_transaction(url, settings, full=True)
    say(f"    rebuilt in {time.monotonic() - started:.0f}s")
    _restore_alerts(settings, staging, say)
    skip = NOT_SERVING + (("reads",) if pooler.enabled(settings) else ())  # serve runs the PgBouncer it reads
    return doctor.run(settings, f"http://{settings.superset_host}:{settings.superset_port}", 60, skip)


def _restore_alerts(settings: config.Settings, staging: Path, say: Say) -> None:
    """The archived alerts/ into the data dir (alerts/ is git's; Superset's metadata holds the alerts)."""
    if not (staging / "alerts").is_dir():
        return
    target = settings.data_dir / ALERTS_RESTORED
    shutil.copytree(staging / "alerts", target)
    ours, theirs = ({p.name: p.read_bytes() for p in d.glob("*.yaml")} for d in (definition.ALERTS_DIR, target))
    differ = sorted(n for n in set(ours) | set(theirs) if ours.get(n) != theirs.get(n))
    say(f"    the alerts folder as backed up is in {target}: "
        + (f"differs from {definition.ALERTS_DIR} in {', '.join(differ)}" if differ else f"equals {definition.ALERTS_DIR}"))


MULTI_WORD = ("TABLE DATA", "SEQUENCE SET", "SEQUENCE OWNED BY", "FK CONSTRAINT", "CHECK CONSTRAINT", "STATISTICS DATA")


def _toc(dump: Path) -> list[tuple[str, str, str]]:
    """(kind, schema, the list line) of each entry of a custom-format dump (`pg_restore -l`)."""
    done, entries = embedded_pg.run_binary("pg_restore", "--list", str(dump)), []
    if done.returncode != 0:
        raise BackupError(f"pg_restore cannot read {dump.name}: {done.stderr.strip()[:200]}")
    for line in done.stdout.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        rest = line.split(";", 1)[1].split(None, 2)[2]  # past "id; tableoid oid"
        kind = next((k for k in MULTI_WORD if rest.startswith(k + " ")), rest.split()[0])
        schema = rest[len(kind):].split()[0]
        entries.append((kind, schema, line))
    return entries


def _pg_restore(url: str, dump: Path, entries: list[tuple[str, str, str]] | None) -> None:
    """pg_restore in one transaction (a failure restores nothing), owned by the restoring role;
    with `entries`, only those (none: nothing to do)."""
    if entries == []:  # nothing of that kind in the archive
        return
    with tempfile.NamedTemporaryFile("w", suffix=".list", dir=dump.parent) as listed:
        listed.write("".join(line + "\n" for _, _, line in entries or []))
        listed.flush()
        _run("pg_restore", url, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
             *([f"--use-list={listed.name}"] if entries is not None else []), str(dump))
