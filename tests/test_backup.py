"""Issue 34: `sparklio-bi backup` of the shared install (a user added, a dashboard's title edited
through the API, collector samples), `restore` of it into a new data dir with a second embedded
server on ports of its own, served: the user logs in with the same password, the edit is there,
the charts answer what the original's answer, the samples are equal and doctor is ok. Bad archives
and targets are refused with one line and nothing done; a backup taken while rows are written is
one snapshot."""
from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from sparklio_bi import config
from sparklio_bi.ops import backup as archives
from sparklio_bi.postgres import database, embedded_pg
from sparklio_bi.quality import reference_api, reference_host
from sparklio_bi.quality.reference import CHARTS, SELF_OBSERVING, VOLATILE, chart_rows, chart_titles, same
from sparklio_bi.warehouse import migrate
from tests.conftest import (
    ADMIN_PASSWORD,
    CLI,
    ROOT,
    TokenSession,
    api_list,
    chart_ids,
    cli,
    csrf_header,
    fingerprint,
    free_port,
    start_server,
)
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_doctor import doctor, failing
from tests.test_superset import assert_chart_matches_reference

USER, PASSWORD = "backup-lena", "Kestrel-backup-71-lantern"
EDIT = " (edited before the backup)"
SERVER_CHARTS = "5."  # dashboard 5 describes the server it reads (sizes, statements, live samples)


def samples(url: str, until=None) -> list[tuple]:
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select sampled_at, metric, dimension, value from analytics.system_samples "
                    "where sampled_at <= coalesce(%s::timestamptz, 'infinity') order by 1, 2, 3", (until,))
        return cur.fetchall()


@pytest.fixture(scope="module")
def backed_up(bootstrapped, server, api, tmp_path_factory):
    """The shared install with USER, a dashboard retitled and samples, backed up; the title is put
    back afterwards (other test modules compare Superset with assets/): (archive, dashboard, title,
    (the samples before the backup, after it))."""
    cli("users", "add", USER, "--role", "viewer", env=dict(os.environ, SPARKLIO_USER_PASSWORD=PASSWORD))
    dashboard = api_list(api, "dashboard")[0]
    title = dashboard["dashboard_title"]
    url = f"{api.base}/api/v1/dashboard/{dashboard['id']}"
    answer = api.put(url, json={"dashboard_title": title + EDIT}, headers=csrf_header(api), timeout=30)
    assert answer.status_code == 200, answer.text
    try:
        deadline = time.monotonic() + 60
        while not samples(bootstrapped["url"]):  # serve's collector, every 5 s
            assert time.monotonic() < deadline, "no collector sample within 60 s"
            time.sleep(1)
        archive = tmp_path_factory.mktemp("backup") / "sparklio.tar.gz"
        before = samples(bootstrapped["url"])
        done = cli("backup", str(archive))
        after = samples(bootstrapped["url"])
        assert "analytics.system_samples" in done.stdout
    finally:
        api.put(url, json={"dashboard_title": title}, headers=csrf_header(api), timeout=30)
    return archive, dashboard["id"], title, (before, after)


@pytest.fixture(scope="module")
def restored(backed_up, tmp_path_factory):
    """The archive restored into a new data dir (its own embedded server and PgBouncer ports), then
    served: (env, base URL, restore's output)."""
    archive, *_ = backed_up
    env = dict(os.environ, SPARKLIO_DATA_DIR=str(tmp_path_factory.mktemp("restored") / "data"),
               SPARKLIO_PG_PORT=str(free_port()), SPARKLIO_POOLER_PORT=str(free_port()))
    done = cli("restore", str(archive), env=env)
    proc, base = start_server("--collect-interval", "5", log_name="restored-serve.log", env=env)
    try:
        yield env, base, done
    finally:
        proc.terminate()
        proc.wait(30)
        cli("db", "stop", env=env)


def test_the_archive_is_the_owners_alone_and_lists_what_it_holds(backed_up, settings):
    archive, *_ = backed_up
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile(archives.MANIFEST))
    assert {"superset.dump", "analytics.dump", "secrets/superset-secret-key", "secrets/pg-reader-password",
            "secrets/pg-password", "alerts/agent_failing.yaml"} <= names
    assert set(manifest["members"]) == names - {archives.MANIFEST}
    assert manifest["bundle_version"] == archives.bundle_version() and manifest["timezone"] == settings.timezone
    assert "analytics.system_samples" in manifest["tables"] and "public.agent_logs" in manifest["tables"]
    assert not [t for t in manifest["tables"] if t.endswith(("_hours", "_rollup", "_months"))]  # rebuilt instead


@pytest.mark.slow  # a second embedded server, Superset's metadata restored and served: about 2 minutes
def test_a_restore_on_a_new_data_dir_and_port_is_the_same_install(restored, backed_up, api, bootstrapped):
    env, base, done = restored
    archive, dashboard_id, title, (before, after) = backed_up
    assert "5/5 rollups: rebuilt from the rows" in done.stdout and "FAIL" not in done.stdout.replace(
        "FAIL  assets", ""), done.stdout
    TokenSession(base, USER, PASSWORD)  # the same user, the same password
    admin = TokenSession(base, "admin", ADMIN_PASSWORD)
    shown = admin.get(f"{base}/api/v1/dashboard/{dashboard_id}", timeout=30).json()["result"]["dashboard_title"]
    assert shown == title + EDIT
    restored_url = embedded_pg.server_url(config.load(env))
    # the samples the snapshot saw: all those written before the backup, some of those written during
    # it; those after are the restored serve's own collector's
    copied = set(samples(restored_url, after[-1][0]))
    assert set(before) <= copied <= set(after), (len(before), len(copied), len(after))
    theirs, ours, titles = chart_ids(api), chart_ids(admin), chart_titles()
    for chart in CHARTS:
        if not chart.key.startswith(SERVER_CHARTS):
            assert_same_data(api, theirs[titles[chart.key]], admin, ours[titles[chart.key]], chart.key)
    code, lines = doctor(base, env)
    # assets: the edit is not in assets/ (as backed up), so that check may fail; nothing else
    assert set(failing(lines)) <= {"assets"}, "\n".join(lines.values())


def assert_same_data(original, chart_id: int, copy, copy_id: int, key: str) -> None:
    """The chart's data through each install's API, asked at the same moment (three tries: a
    window that ends now may move a row between the two answers), floats to 1e-9 relative (sums
    of the sink's quarter hours, rebuilt by its triggers in another order)."""
    for _ in range(3):
        theirs, ours = (session.get(f"{session.base}/api/v1/chart/{cid}/data/?force=true", timeout=60)
                        for session, cid in ((original, chart_id), (copy, copy_id)))
        assert theirs.status_code == ours.status_code == 200, (key, theirs.text[:300], ours.text[:300])
        if same(chart_rows(theirs.json()), chart_rows(ours.json())):
            return
    assert chart_rows(ours.json()) == chart_rows(theirs.json()), f"chart {key} differs after the restore"


def rewritten(archive: Path, target: Path, change) -> Path:
    """A copy of `archive` with `change(name, bytes) -> bytes` applied to each member."""
    with tarfile.open(archive) as source, tarfile.open(target, "w:gz") as copy:
        for member in source:
            data = change(member.name, source.extractfile(member).read())
            member.size = len(data)
            copy.addfile(member, io.BytesIO(data))
    return target


def restore_into(target: Path, archive: Path):
    env = dict(os.environ, SPARKLIO_DATA_DIR=str(target), SPARKLIO_PG_PORT=str(free_port()),
               SPARKLIO_POOLER_PORT=str(free_port()))
    done = run_cli("restore", str(archive), env=env)
    if done.returncode == 0:  # it should have been refused: stop the server it made
        cli("db", "stop", env=env)
    return done


def test_a_tampered_archive_is_refused_and_nothing_is_made(backed_up, tmp_path):
    archive, *_ = backed_up
    def flip(name, data):  # one bit in the middle of Superset's dump
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:] if name == "superset.dump" else data

    tampered = rewritten(archive, tmp_path / "tampered.tar.gz", flip)
    done = restore_into(tmp_path / "data", tampered)
    assert_one_line_error(done, "fails its checksums (superset.dump missing or changed)", "nothing restored")
    assert not (tmp_path / "data").exists()


def test_an_archive_from_a_newer_bundle_is_refused(backed_up, tmp_path):
    archive, *_ = backed_up

    def newer(name, data):
        if name != archives.MANIFEST:
            return data
        return json.dumps(dict(json.loads(data), bundle_version="99.0.0")).encode()

    done = restore_into(tmp_path / "data", rewritten(archive, tmp_path / "newer.tar.gz", newer))
    assert_one_line_error(done, "from sparklio-bi 99.0.0, newer than this one", "nothing restored")
    assert not (tmp_path / "data").exists()


def test_a_data_dir_that_is_not_empty_is_refused(backed_up, tmp_path):
    archive, *_ = backed_up
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine\n")
    done = restore_into(tmp_path / "data", archive)
    assert_one_line_error(done, "is not empty", "--force", "nothing restored")
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["notes.txt"]


@pytest.mark.slow  # a whole restore: about 30 s
def test_force_moves_a_data_dir_that_is_not_empty_aside_first(backed_up, tmp_path):
    archive, *_ = backed_up
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine\n")
    env = dict(os.environ, SPARKLIO_DATA_DIR=str(tmp_path / "data"), SPARKLIO_PG_PORT=str(free_port()),
               SPARKLIO_POOLER_PORT=str(free_port()))
    try:
        cli("restore", "--force", str(archive), env=env)
    finally:
        cli("db", "stop", env=env, check=False)
    (aside,) = tmp_path.glob("data.replaced-*")
    assert (aside / "notes.txt").read_text() == "mine\n" and (tmp_path / "data" / "superset-secret-key").exists()


def test_an_existing_file_is_never_overwritten_by_a_backup(bootstrapped, tmp_path):
    (tmp_path / "old.tar.gz").write_text("an older backup\n")
    assert_one_line_error(run_cli("backup", str(tmp_path / "old.tar.gz")), "exists")
    assert (tmp_path / "old.tar.gz").read_text() == "an older backup\n"


def test_a_backup_while_rows_are_written_is_one_snapshot(bootstrapped, server, api, make_database, tmp_path):
    """A thread writes a workflow and its five agent_logs per transaction, and a chart is read, all
    through the backup: the archive's tables restore with their foreign keys, and every workflow
    it holds from the thread has its five rows."""
    url, stop, written = bootstrapped["url"], threading.Event(), []
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute("select max(id) from public.workflows")
        (before,) = cur.fetchone()

    def write():
        with database.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("begin")
                cur.execute("insert into public.workflows (project_id, status) "
                            "select min(id), 'running' from public.projects returning id")
                workflow = cur.fetchone()[0]
                cur.execute("""insert into public.agent_logs (workflow_id, agent_name, model, status, latency_ms)
                               select %s, 'probe_backup', 'gpt-4o', 'success', 100 from generate_series(1, 5)""",
                            (workflow,))
                cur.execute("commit")
                written.append(workflow)
                stop.wait(0.01)  # about a hundred a second: the shared install's other tests read these tables

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        while len(written) < 20:
            time.sleep(0.05)
        chart = chart_ids(api)[chart_titles()["2.1"]]
        assert api.get(f"{api.base}/api/v1/chart/{chart}/data/?force=true", timeout=60).status_code == 200
        cli("backup", str(tmp_path / "busy.tar.gz"))
    finally:
        stop.set()
        writer.join(30)
    archives.open_archive(tmp_path / "busy.tar.gz", tmp_path / "open")  # checksums
    scratch = make_database("backup_busy")
    args, env = archives._client_args(scratch)  # the archive's source tables, schema and rows: foreign keys checked
    done = embedded_pg.run_binary("pg_restore", *args, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
                    "--schema=public", str(tmp_path / "open" / archives.TABLES_DUMP), env=env)
    assert done.returncode == 0, done.stderr
    with database.connect(scratch) as conn, conn.cursor() as cur:
        cur.execute("""select count(distinct w.id), count(a.id), count(*) filter (where a.id is null)
                       from public.workflows w left join public.agent_logs a on a.workflow_id = w.id
                       where w.id > %s""", (before,))
        workflows, rows, without = cur.fetchone()
    assert workflows >= 20 and rows == 5 * workflows and without == 0, (workflows, rows, without)
    assert len(written) > workflows  # the thread went on writing after the snapshot


# --- an install of an earlier release, upgraded in place to head ---------------------------------

RELEASES = {"0.1.0": "b6c6d61"}  # each earlier release kept in the matrix -> its commit (CHANGELOG.md)
OLD_USER, OLD_PASSWORD = "kestrel-upgrade", "Kestrel-upgrade-71-lantern"


@pytest.fixture(scope="module", params=sorted(RELEASES))
def upgraded(request, bootstrapped, tmp_path_factory):
    """An install bootstrapped by an earlier release's own code (its tree from git, run with this
    venv), with a brand-limited user and a sample; then `bootstrap` of head on the same data dir,
    and served: (env, base URL, analytics URL, source fingerprint and samples before, a backup taken
    before the upgrade)."""
    tree = tmp_path_factory.mktemp(f"release-{request.param}")
    subprocess.run(f"git -C {ROOT} archive {RELEASES[request.param]} | tar -x -C {tree}", shell=True, check=True)
    env = dict(os.environ, SPARKLIO_DATA_DIR=str(tree / ".data"), SPARKLIO_PG_PORT=str(free_port()),
               SPARKLIO_POOLER_PORT=str(free_port()))
    for name in ("SUPERSET_CONFIG_PATH", "FLASK_APP"):  # set in this process by an earlier app_context: head's
        env.pop(name, None)

    def old(*args, **extra):  # the old tree's package and files: `python -m` puts its cwd first
        done = subprocess.run([*CLI, *args], cwd=tree, env=dict(env, **extra), capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{request.param}: sparklio-bi {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    done = old("bootstrap", "--no-serve", "--scale", "0.3")
    assert str(tree / "superset_config.py") in done.stdout + done.stderr  # the old tree's code ran
    old("users", "add", OLD_USER, "--brand", "2", SPARKLIO_USER_PASSWORD=OLD_PASSWORD)
    old("collect", "--once")
    url = embedded_pg.server_url(config.load(env))
    before = fingerprint(url), samples(url)
    archive = tree / "before-the-upgrade.tar.gz"
    cli("backup", str(archive), env=env)  # head's backup of the earlier schema, for the restore test below
    cli("bootstrap", "--no-serve", "--scale", "0.3", env=env)  # head, in place
    proc, base = start_server("--collect-interval", "5", log_name=f"upgraded-{request.param}-serve.log", env=env)
    try:
        yield env, base, url, before, archive
    finally:
        proc.terminate()
        proc.wait(30)
        cli("db", "stop", env=env)


@pytest.mark.slow  # an earlier release's bootstrap, then head's, then served: about 3 minutes
def test_an_earlier_release_upgraded_in_place_keeps_its_data_and_users(upgraded, server):
    env, base, url, (source_before, samples_before), _ = upgraded
    source_after = fingerprint(url)
    assert {k: v for k, v in source_after.items() if k.startswith("public.")} == \
        {k: v for k, v in source_before.items() if k.startswith("public.")}
    assert set(samples_before) <= set(samples(url))
    TokenSession(base, OLD_USER, OLD_PASSWORD)  # moved to the limited viewer role, same password
    admin = TokenSession(base, "admin", ADMIN_PASSWORD)
    ids, titles = chart_ids(admin), chart_titles()
    # the host and API charts (dashboards 5.5-5.12, 9) read data the earlier release never collected
    later = {chart.key for chart in reference_host.CHARTS + reference_api.CHARTS} | VOLATILE | SELF_OBSERVING
    for chart in CHARTS:
        if chart.key not in later:
            assert_chart_matches_reference(admin, url, chart, ids[titles[chart.key]])
    code, lines = doctor(base, env)
    fresh = doctor(server)[1]  # the test session's install, bootstrapped by head from nothing
    assert {name: line for name, line in failing(lines).items() if line != fresh[name]} == {}, "\n".join(lines.values())


@pytest.mark.slow
def test_an_archive_of_an_earlier_schema_is_migrated_by_restore(upgraded, tmp_path):
    """The backup taken before the upgrade (analytics at the earlier release's head) restores onto a
    new data dir: migrated from its revision to head, the rollups rebuilt, doctor's checks ok."""
    env, *_, archive = upgraded
    with tarfile.open(archive) as tar:
        revision = json.load(tar.extractfile(archives.MANIFEST))["migration"]
    target = dict(env, SPARKLIO_DATA_DIR=str(tmp_path / "data"), SPARKLIO_PG_PORT=str(free_port()),
                  SPARKLIO_POOLER_PORT=str(free_port()))
    try:
        done = cli("restore", str(archive), env=target)
    finally:
        cli("db", "stop", env=target, check=False)
    assert f"migrating to {revision}, the kept rows, then to head" in done.stdout
    assert f"ok    migrations: at head ({migrate.head()})" in done.stdout and revision != migrate.head()
