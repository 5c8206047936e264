"""Nothing lost: the commands that delete or replace refuse what the bundle does not own
(issue 7's data-loss cases, each reproduced as the operator met it)."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from sparklio_bi import database, views
from tests.conftest import cli
from tests.test_cli import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"


def application_database(make_database) -> str:
    """A database shaped like Sparklio's own: the same tables, made by the application (no
    sparklio-bi marker), holding a real user."""
    url = make_database("app")
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(views.render(views.SOURCE_DDL))
        cur.execute("insert into public.users (id, email, created_at) values (1, 'real@customer.example', now())")
        cur.execute("insert into public.brands (id, name, created_at) values (1, 'Real brand', now())")
        cur.execute("insert into public.projects (id, brand_id, user_id, created_at) values (1, 1, 1, now())")
    return url


def table_checksums(url: str) -> dict[str, str]:
    with database.connect(url) as conn, conn.cursor() as cur:
        out = {}
        for table in views.SOURCE_TABLES:
            cur.execute(f"select count(*) || ':' || md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
                        f"from public.{table} t")
            out[table] = cur.fetchone()[0]
        return out


def test_seed_refuses_a_database_it_did_not_create(make_database):
    url = application_database(make_database)
    before = table_checksums(url)
    result = run_cli("seed", "--scale", "0.1", env=dict(os.environ, DATABASE_URL=url))
    assert_one_line_error(result, "were not created by sparklio-bi", "--replace-application-data")
    assert table_checksums(url) == before


def test_seed_replaces_application_rows_only_when_told_loudly(make_database):
    url = application_database(make_database)
    result = run_cli("seed", "--scale", "0.1", "--replace-application-data", env=dict(os.environ, DATABASE_URL=url))
    assert result.returncode == 0, result.stderr
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from public.users where email = 'real@customer.example'")
        assert cur.fetchone()[0] == 0


def test_seed_replaces_the_bundles_own_demo_tables(make_database):
    url = make_database("demo")
    first = run_cli("seed", "--scale", "0.1", env=dict(os.environ, DATABASE_URL=url))  # creates and marks them
    again = run_cli("seed", "--scale", "0.1", "--seed", "9", env=dict(os.environ, DATABASE_URL=url))
    assert first.returncode == 0 and again.returncode == 0, again.stderr


def files_under(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder`: path -> content digest ('dir' for folders)."""
    return {p.relative_to(folder).as_posix(): "dir" if p.is_dir() else hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def test_export_keeps_every_file_it_does_not_own(bootstrapped, tmp_path):
    bundle = tmp_path / "assets"
    shutil.copytree(ASSETS, bundle)
    foreign = {  # what an operator keeps beside the bundle: a nested clone, notes, an empty folder
        "vendor/other-bundle/charts/Their_chart.yaml": "slice_name: theirs\n",
        "vendor/other-bundle/.git/refs/tags/.keep": "",
        "charts/drafts/Draft.yaml": "slice_name: draft\n",
        "notes.yaml": "todo: review\n",
        "README.md": "# our dashboards\n",
    }
    for rel, text in foreign.items():
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_text(text)
    (bundle / ".git" / "refs" / "tags").mkdir(parents=True)
    stale = bundle / "charts" / "A_chart_deleted_in_Superset.yaml"
    stale.write_text((ASSETS / "charts" / "Assets_per_day.yaml").read_text())
    before = files_under(bundle)
    cli("assets", "export", "--dir", str(bundle))
    after = files_under(bundle)
    assert not stale.exists()  # the bundle's own file of an object Superset no longer has
    lost = sorted(set(before) - set(after) - {stale.relative_to(bundle).as_posix()})
    assert lost == []
    for rel, text in foreign.items():
        assert (bundle / rel).read_text() == text
    assert {k: v for k, v in after.items() if not k.startswith(("vendor", "charts/drafts", ".git"))
            and k not in foreign} == files_under(ASSETS)


def test_export_refuses_a_folder_that_is_not_a_bundle(bootstrapped, tmp_path):
    folder = tmp_path / "work"
    (folder / "project").mkdir(parents=True)
    (folder / "project" / "config.yaml").write_text("keep: me\n")
    (folder / "empty").mkdir()
    before = files_under(folder)
    result = run_cli("assets", "export", "--dir", str(folder))
    assert_one_line_error(result, "is not a bundle (no metadata.yaml) and not empty")
    assert files_under(folder) == before
    empty = tmp_path / "new-bundle"
    empty.mkdir()
    assert run_cli("assets", "export", "--dir", str(empty)).returncode == 0
    assert (empty / "metadata.yaml").is_file()
