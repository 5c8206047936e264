"""Superset's SECRET_KEY against its metadata database: the key encrypts every stored database
password, so a lost or changed key makes every chart fail ("Invalid decryption key"). This
checks the key before Superset runs, and never lets a new key be made over metadata encrypted
with another one."""
from __future__ import annotations

import warnings
from pathlib import Path

import psycopg2

from sparklio_bi import config, datadir
from sparklio_bi.postgres import database

RECOVERY = ("restore the previous key (from a backup of the data dir, or the old SUPERSET_SECRET_KEY); "
            "or, with it, rotate: PREVIOUS_SECRET_KEY=<old> superset re-encrypt-secrets; "
            "or, if it is lost, `sparklio-bi recover-secret-key` (re-injects the bundle's own database password)")


def current_key(settings: config.Settings) -> tuple[str | None, str]:
    """(the key Superset will use, where it comes from): SUPERSET_SECRET_KEY, else the data dir's
    file (None when neither is there yet)."""
    if settings.secret_key:
        return settings.secret_key, "SUPERSET_SECRET_KEY"
    path = key_file(settings)
    return (path.read_text().strip() if path.exists() else None), str(path)


def key_file(settings: config.Settings) -> Path:
    """Where demo mode keeps its generated key."""
    return settings.data_dir / datadir.SECRET_KEY


def stored_secrets(metadata_url: str) -> list[tuple[str, bytes | str]] | None:
    """(database name, encrypted password) of every database Superset keeps a password for;
    None when the metadata database cannot be read (not created or not reachable yet)."""
    try:
        with database.connect(metadata_url) as conn, conn.cursor() as cur:
            cur.execute("select to_regclass('public.dbs')")
            if cur.fetchone()[0] is None:
                return []
            cur.execute("select database_name, password from dbs where password is not null order by id")
            return cur.fetchall()
    except (database.DatabaseError, psycopg2.Error):
        return None


def undecryptable(metadata_url: str, key: str) -> list[str] | None:
    """Names of the databases whose stored password `key` cannot decrypt ([]: the key matches;
    None: the metadata database could not be read)."""
    from sqlalchemy import String
    from sqlalchemy.dialects import postgresql
    from sqlalchemy_utils import EncryptedType  # Superset's SQLAlchemyUtilsAdapter type (AES, the key as given)

    stored = stored_secrets(metadata_url)
    if stored is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # sqlalchemy_utils' note on a future change
        kind = EncryptedType(String(1024), key)
    dialect, bad = postgresql.dialect(), []
    for name, value in stored:
        try:
            kind.process_result_value(bytes(value) if isinstance(value, memoryview) else value, dialect)
        except (ValueError, UnicodeDecodeError):
            bad.append(name)
    return bad


def problem(metadata_url: str, key: str | None, where: str) -> str | None:
    """Why Superset must not start with `key` (None: it may). No key (None) means one would be
    generated: refused when the metadata already holds secrets."""
    if key is None:
        stored = stored_secrets(metadata_url)
        if stored:
            return (f"{where} is missing but Superset's metadata database holds secrets encrypted with a key: "
                    f"a new key would break every chart. {RECOVERY}")
        return None
    bad = undecryptable(metadata_url, key)
    if bad:
        return (f"the secret key ({where}) does not decrypt the stored password of {', '.join(bad)}: "
                f"it is not the key Superset's metadata was encrypted with. {RECOVERY}")
    return None


def startup_problem(settings: config.Settings) -> str | None:
    """Why Superset must not start (None: it may): a weak key, or one that does not decrypt the
    metadata's stored passwords (a lost key file would otherwise be replaced silently and break
    every chart). What superset_config.py and `serve` check. Only the strength is checked while
    rotating (PREVIOUS_SECRET_KEY) and during `sparklio-bi recover-secret-key`."""
    weak = config.secret_key_problem()
    if weak or settings.previous_secret_key or settings.secret_key_recovery:
        return weak
    return problem(database.superset_metadata_url(settings, start=False), *current_key(settings))


def forget_database_secrets(metadata_url: str, database_name: str) -> None:
    """Clear the encrypted fields of the bundle's own database row (in Superset's `dbs`), which no
    key can read any more. The one write into Superset's tables outside its commands: Superset
    cannot load, so cannot update or re-import, a row it cannot decrypt. The import that follows
    writes them again, encrypted with the new key."""
    with database.connect(metadata_url) as conn, conn.cursor() as cur:
        cur.execute("update dbs set password = null, encrypted_extra = null, server_cert = null "
                    "where database_name = %s", (database_name,))
