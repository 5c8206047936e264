"""The bundle in and out of Superset, through its own import and export commands (never behind
its back into its tables): import in one transaction, export normalised, a ZIP for
`superset import-dashboards`."""
from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

from sparklio_bi import config
from sparklio_bi.superset import internals
from sparklio_bi.superset.assets.files import dump_yaml, load_yaml, read_bundle, write
from sparklio_bi.superset.assets.layout import (
    ASSET_DIRECTORIES,
    DATABASE_NAMES,
    EXPORT_VERSION,
    METADATA,
    PLACEHOLDER_URI,
    RANGED_VIEWS,
    SERVER_DATABASE_NAME,
    ZIP_ROOT,
    AssetsError,
    ranged_sql,
)
from sparklio_bi.superset.assets.normalise import normalise
from sparklio_bi.superset.assets.validation import validate


def import_bundle(assets_dir: Path, database_uri: str, settings: config.Settings,
                  kinds: tuple[str, ...] = ASSET_DIRECTORIES, server_uri: str | None = None) -> dict[str, int]:
    """Import (overwrite) every object of `kinds` with Superset's ImportAssetsCommand, in one
    transaction; returns how many objects of each kind. `server_uri` is the server-health
    database's (the primary's; default `database_uri`). Raises AssetsError and imports nothing
    if invalid."""
    with _superset(settings):
        problems = validate(assets_dir)
        if problems:
            raise AssetsError(f"{len(problems)} problem(s), nothing imported:\n" + "\n".join(problems),
                              problems)
        texts = {rel: text for rel, text in read_bundle(assets_dir).items()
                 if rel == METADATA or rel.split("/")[0] in kinds}
        contents = _for_import(texts, database_uri, settings.analytics_schema, "assets", server_uri)
        _import_contents(contents)
    return {kind: sum(rel.startswith(kind + "/") for rel in contents) for kind in ASSET_DIRECTORIES}


def _import_contents(contents: dict[str, str]) -> None:
    """One transaction: the databases first when a dataset Superset has must move to another of
    them (dashboard 5's did, to the server-health database), then everything."""
    wanted = {cfg["uuid"]: cfg["database_uuid"] for cfg in
              (load_yaml(text) for rel, text in contents.items() if rel.startswith("datasets/"))}
    try:
        with internals.one_transaction() as session:
            if wanted:
                internals.run_import({rel: text for rel, text in contents.items()
                                      if rel == METADATA or rel.startswith("databases/")})
                internals.move_datasets(wanted)
            internals.run_import(contents)
        session.commit()
    except internals.SupersetRefused as exc:
        raise AssetsError(f"import failed, nothing changed: {exc}") from None


def _for_import(texts: dict[str, str], database_uri: str, schema: str, bundle_type: str,
                server_uri: str | None = None) -> dict[str, str]:
    """The bundle with the real database URIs (password included; the server-health database's
    is `server_uri`, default `database_uri`), the configured analytics schema on every dataset,
    and the metadata type."""
    out = dict(texts)
    out[METADATA] = dump_yaml({"type": bundle_type, "version": EXPORT_VERSION})
    for rel in texts:
        if rel.startswith(("databases/", "datasets/")):
            cfg = load_yaml(texts[rel])
            if rel.startswith("databases/"):
                server = cfg.get("database_name") == SERVER_DATABASE_NAME
                cfg["sqlalchemy_uri"] = (server_uri or database_uri) if server else database_uri
            else:
                cfg["schema"] = schema
                if cfg.get("table_name") in RANGED_VIEWS and cfg.get("sql"):
                    cfg["sql"] = ranged_sql(cfg["table_name"], schema)
            out[rel] = dump_yaml(cfg)
    return out


@contextlib.contextmanager
def _superset(settings: config.Settings) -> Iterator[None]:
    """An app context (the caller's, else a new one) with the admin as the acting user."""
    from flask import has_app_context

    from sparklio_bi.superset import app

    with contextlib.ExitStack() as stack:
        if not has_app_context():
            stack.enter_context(app.app_context(settings))
        if stack.enter_context(internals.acting_user(settings.admin_username)) is None:
            raise AssetsError(f"Superset has no user {settings.admin_username!r} to import or export as")
        yield


# --- export -------------------------------------------------------------------------------

def export_bundle(assets_dir: Path, settings: config.Settings) -> list[Path]:
    """Export from Superset the dashboards on the bundle's database, with everything they use,
    and every dataset on that database (the raw views no chart reads are there for SQL Lab and
    Explore), normalised (no ids, no secrets, sorted keys) into assets_dir; returns the files
    written."""
    with _superset(settings):
        ids, dataset_ids = _bundle_ids(assets_dir)
        if not ids:
            raise AssetsError("Superset has no dashboard with charts on the bundle's database")
        exported = internals.export(ids, dataset_ids)
    return write(assets_dir, normalise(exported))


def _bundle_ids(assets_dir: Path) -> tuple[list[int], list[int]]:
    """Ids of the dashboards with charts on the bundle's database, and of its datasets."""
    models, session = internals.models(), internals.session()
    uuids = {load_yaml(text).get("uuid") for rel, text in read_bundle(assets_dir).items()
             if rel.startswith("databases/")} if assets_dir.is_dir() else set()
    ours = lambda database: str(database.uuid) in uuids or database.database_name in DATABASE_NAMES  # noqa: E731
    dashboards = sorted(d.id for d in session.query(models["dashboards"]).all()
                        if any(c.table is not None and ours(c.table.database) for c in d.slices))
    datasets = sorted(t.id for t in session.query(models["datasets"]).all() if ours(t.database))
    return dashboards, datasets


def zip_bundle(assets_dir: Path, out_path: Path, schema: str, database_uri: str | None = None,
               server_uri: str | None = None) -> Path:
    """A ZIP (one top folder) for `superset import-dashboards -p ZIP -u admin`. Without
    `database_uri` the databases keep their placeholder: no secret leaves the machine, and a
    Superset that already has the databases imports it. With one, the file is made 0600."""
    problems = validate(assets_dir)
    if problems:
        raise AssetsError(f"{len(problems)} problem(s), no zip written:\n" + "\n".join(problems))
    contents = _for_import(read_bundle(assets_dir), database_uri or PLACEHOLDER_URI, schema, "Dashboard",
                           server_uri if database_uri else None)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.unlink(missing_ok=True)
        out_path.touch(mode=0o600 if database_uri else 0o644)
        with zipfile.ZipFile(out_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for rel, text in sorted(contents.items()):  # fixed timestamps: same bundle, same bytes
                archive.writestr(zipfile.ZipInfo(f"{ZIP_ROOT}/{rel}", date_time=(1980, 1, 1, 0, 0, 0)), text)
    except OSError as exc:
        raise AssetsError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    return out_path
