"""Superset roles as code: who may see what, created by bootstrap and kept by every re-run.

- `Sparklio Viewer`: the eight dashboards and the datasets behind them; no SQL Lab, no edits.
- `Sparklio Analyst`: the viewer's rights plus SQL Lab on the bundle's database only.
- `Sparklio Limited Viewer`: what a brand-limited person holds instead of the viewer role: the
  dashboards, and only the datasets with a `brand_id` column (a dataset without one, the router's,
  the system's or the users', would show every brand's rows, so it is not granted). No SQL Lab:
  it reads every view whole, so a brand-limited person is never an analyst.
- `Sparklio Brand <id>`: given beside the limited viewer, limits every dataset with a `brand_id`
  column to that brand, through one Superset row-level security rule per brand (rules of
  several brands of one person are ORed: they share the group key `brand`).

Everything goes through Superset's security manager and its RLS commands (needs an app context).
"""
from __future__ import annotations

import re

from .assets import DATABASE_NAME
from .errors import BundleError

VIEWER = "Sparklio Viewer"
ANALYST = "Sparklio Analyst"
BRAND_VIEWER = "Sparklio Limited Viewer"  # a viewer limited to brands
BRAND_ROLE_PREFIX = "Sparklio Brand "
BRAND_RULE_PREFIX = "sparklio brand "
BRAND_COLUMN = "brand_id"
ROLES = {"viewer": VIEWER, "analyst": ANALYST}

# Beyond Superset's read-only dashboard set (its PUBLIC_ROLE_PERMISSIONS): the menu and list
# pages a signed-in person uses, and the frontend's own bookkeeping calls.
VIEWER_EXTRA = {
    ("menu_access", "Dashboards"), ("menu_access", "Charts"), ("can_list", "DashboardModelView"),
    ("can_read", "Dataset"), ("can_log", "Superset"), ("can_userinfo", "UserDBModelView"),
    ("can_recent_activity", "Log"), ("can_read", "DashboardFilterStateRestApi"),
}


# Superset's user names: up to 64 characters (ab_user.username), letters, digits and . _ @ + -,
# starting with a letter or digit (no spaces, quotes or control characters in a login name).
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")


def username_problem(username: str) -> str | None:
    """Why a name cannot be a Superset user name (None: it can)."""
    if not username:
        return "the user name is empty"
    if len(username) > 64:
        return f"the user name is {len(username)} characters long: at most 64"
    if not USERNAME.fullmatch(username):
        return (f"the user name {username[:64]!r} may hold only letters, digits and . _ @ + - "
                "(starting with a letter or digit)")
    return None


def email_problem(email: str) -> str | None:
    if not EMAIL.fullmatch(email):
        return f"--email {email[:80]!r} is not an e-mail address"
    return None


class RolesError(BundleError):
    """A user, brand or role named on the command line does not exist."""


def bundle_datasets() -> list:
    """The datasets on the bundle's database."""
    from superset import db
    from superset.connectors.sqla.models import SqlaTable
    from superset.models.core import Database

    return (db.session.query(SqlaTable).join(Database, SqlaTable.database_id == Database.id)
            .filter(Database.database_name == DATABASE_NAME).order_by(SqlaTable.table_name).all())


def _bundle_database():
    from superset import db
    from superset.models.core import Database

    return db.session.query(Database).filter_by(database_name=DATABASE_NAME).one_or_none()


def viewer_permissions(datasets: list | None = None) -> set[tuple[str, str]]:
    """The dashboards and these datasets (default: every dataset of the bundle)."""
    from superset import security_manager

    granted = {("datasource_access", table.perm) for table in (bundle_datasets() if datasets is None else datasets)}
    return set(security_manager.PUBLIC_ROLE_PERMISSIONS) | VIEWER_EXTRA | granted


def analyst_permissions() -> set[tuple[str, str]]:
    from superset import security_manager

    database = _bundle_database()
    sql_lab = set(security_manager.SQLLAB_ONLY_PERMISSIONS) | set(security_manager.SQLLAB_EXTRA_PERMISSION_VIEWS)
    own_database = {("database_access", database.perm)} if database is not None else set()
    return viewer_permissions() | sql_lab | own_database


def _set_role(name: str, pairs: set[tuple[str, str]]) -> None:
    """The role holds exactly these permissions (those Superset has; others are skipped)."""
    from superset import db, security_manager

    role = security_manager.add_role(name)
    found = [security_manager.find_permission_view_menu(perm, view) for perm, view in sorted(pairs)]
    role.permissions = [pvm for pvm in found if pvm is not None]
    db.session.commit()


def sync() -> list[str]:
    """Create or reset the viewer and analyst roles, and re-point every brand rule at every
    dataset with a brand column; returns the role names."""
    _set_role(VIEWER, viewer_permissions())
    _set_role(ANALYST, analyst_permissions())
    _set_role(BRAND_VIEWER, viewer_permissions(brand_datasets()))
    for role in _brand_roles():
        _ensure_brand_rule(int(role.name[len(BRAND_ROLE_PREFIX):]), role)
    _limit_brand_users()
    return [VIEWER, ANALYST, BRAND_VIEWER]


def _limit_brand_users() -> None:
    """Users given a brand before the brand viewer role existed (viewer or analyst beside a
    brand role) hold the brand viewer role instead: the others read datasets no rule limits."""
    from superset import db, security_manager

    brand_viewer = security_manager.find_role(BRAND_VIEWER)
    for user in db.session.query(security_manager.user_model).all():
        names = {role.name for role in user.roles}
        if any(name.startswith(BRAND_ROLE_PREFIX) for name in names) and names & {VIEWER, ANALYST}:
            user.roles = [role for role in user.roles if role.name not in (VIEWER, ANALYST, BRAND_VIEWER)] + [brand_viewer]
    db.session.commit()


def _brand_roles() -> list:
    from superset import security_manager

    return [role for role in security_manager.get_all_roles() if role.name.startswith(BRAND_ROLE_PREFIX)
            and role.name[len(BRAND_ROLE_PREFIX):].isdigit()]


NO_BRAND_ANALYST = ("a brand-limited user can only be a viewer: SQL Lab reads every view whole, whatever "
                    "the brand rules say")


def brand_datasets() -> list:
    """The bundle's datasets that have a brand_id column: what a brand rule restricts."""
    return [table for table in bundle_datasets() if any(c.column_name == BRAND_COLUMN for c in table.columns)]


def _ensure_brand_rule(brand_id: int, role) -> None:
    from superset import db
    from superset.commands.security.create import CreateRLSRuleCommand
    from superset.commands.security.update import UpdateRLSRuleCommand
    from superset.connectors.sqla.models import RowLevelSecurityFilter

    name = f"{BRAND_RULE_PREFIX}{brand_id}"
    data = {"name": name, "filter_type": "Regular", "group_key": "brand", "clause": f"{BRAND_COLUMN} = {brand_id}",
            "description": f"Rows of brand {brand_id} only (sparklio-bi)",
            "tables": [table.id for table in brand_datasets()], "roles": [role.id]}
    rule = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
    if rule is None:
        CreateRLSRuleCommand(data).run()
    else:
        UpdateRLSRuleCommand(rule.id, data).run()


def brand_role(brand_id: int):
    """The role of one brand, with its rule (created on first use)."""
    from superset import security_manager

    role = security_manager.add_role(f"{BRAND_ROLE_PREFIX}{brand_id}")
    _ensure_brand_rule(brand_id, role)
    return role


def add_user(username: str, password: str, access: str, brands: tuple[int, ...] = (),
             email: str | None = None) -> str:
    """Create a Superset user with the viewer or analyst role, limited to `brands` if any (then
    with the limited viewer role); returns the role's name."""
    from superset import security_manager

    if security_manager.find_user(username=username):
        raise RolesError(f"user {username!r} exists: use `sparklio-bi users set-brands` to change its brands")
    if brands and access != "viewer":
        raise RolesError(NO_BRAND_ANALYST)
    sync()
    roles = [security_manager.find_role(BRAND_VIEWER if brands else ROLES[access]), *(brand_role(b) for b in brands)]
    user = security_manager.add_user(username, username, "(sparklio-bi)", email or f"{username}@sparklio.local",
                                     roles, password=password)
    if not user:
        raise RolesError(f"Superset refused to create user {username!r} (is the e-mail address taken?)")
    return roles[0].name


def set_brands(username: str, brands: tuple[int, ...]) -> None:
    """Limit a user to these brands (none: every brand), keeping its other roles."""
    from superset import security_manager

    user = security_manager.find_user(username=username)
    if user is None:
        raise RolesError(f"Superset has no user {username!r}")
    viewing = {VIEWER, BRAND_VIEWER}
    kept = [role for role in user.roles if role.name not in viewing and not role.name.startswith(BRAND_ROLE_PREFIX)]
    if brands and kept:
        raise RolesError(f"{username!r} is not only a viewer ({', '.join(sorted(r.name for r in kept))}): "
                         f"{NO_BRAND_ANALYST}")
    sync()
    was_viewer = brands or any(role.name in viewing for role in user.roles)
    base = [security_manager.find_role(BRAND_VIEWER if brands else VIEWER)] if was_viewer else []
    user.roles = kept + base + [brand_role(b) for b in brands]
    security_manager.update_user(user)
