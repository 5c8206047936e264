"""Superset roles as code: who may see what, created by bootstrap and kept by every re-run.

- `Sparklio Viewer`: the eight dashboards and the datasets behind them; no SQL Lab, no edits.
- `Sparklio Analyst`: the viewer's rights plus SQL Lab on the bundle's database only.
- `Sparklio Brand <id>`: given beside one of those, limits every dataset with a `brand_id`
  column to that brand, through one Superset row-level security rule per brand (rules of
  several brands of one person are ORed: they share the group key `brand`).

Everything goes through Superset's security manager and its RLS commands (needs an app context).
"""
from __future__ import annotations

from .assets import DATABASE_NAME
from .errors import BundleError

VIEWER = "Sparklio Viewer"
ANALYST = "Sparklio Analyst"
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


def viewer_permissions() -> set[tuple[str, str]]:
    from superset import security_manager

    datasets = {("datasource_access", table.perm) for table in bundle_datasets()}
    return set(security_manager.PUBLIC_ROLE_PERMISSIONS) | VIEWER_EXTRA | datasets


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
    for role in _brand_roles():
        _ensure_brand_rule(int(role.name[len(BRAND_ROLE_PREFIX):]), role)
    return [VIEWER, ANALYST]


def _brand_roles() -> list:
    from superset import security_manager

    return [role for role in security_manager.get_all_roles() if role.name.startswith(BRAND_ROLE_PREFIX)
            and role.name[len(BRAND_ROLE_PREFIX):].isdigit()]


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
             email: str | None = None) -> None:
    """Create a Superset user with the viewer or analyst role, limited to `brands` if any."""
    from superset import security_manager

    if security_manager.find_user(username=username):
        raise RolesError(f"user {username!r} exists: use `sparklio-bi users set-brands` to change its brands")
    sync()
    roles = [security_manager.find_role(ROLES[access]), *(brand_role(b) for b in brands)]
    user = security_manager.add_user(username, username, "(sparklio-bi)", email or f"{username}@sparklio.local",
                                     roles, password=password)
    if not user:
        raise RolesError(f"Superset refused to create user {username!r} (is the e-mail address taken?)")


def set_brands(username: str, brands: tuple[int, ...]) -> None:
    """Limit a user to these brands (none: every brand), keeping its other roles."""
    from superset import security_manager

    user = security_manager.find_user(username=username)
    if user is None:
        raise RolesError(f"Superset has no user {username!r}")
    kept = [role for role in user.roles if not role.name.startswith(BRAND_ROLE_PREFIX)]
    user.roles = kept + [brand_role(b) for b in brands]
    security_manager.update_user(user)
