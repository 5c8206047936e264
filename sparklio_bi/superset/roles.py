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

Everything goes through Superset's security manager and its RLS commands, reached through
superset/internals.py (needs an app context).
"""
from __future__ import annotations

import re

from sparklio_bi import config, datadir
from sparklio_bi.errors import ExpectedError
from sparklio_bi.postgres import database
from sparklio_bi.superset import internals
from sparklio_bi.superset.assets import DATABASE_NAME, DATABASE_NAMES

VIEWER = "Sparklio Viewer"
ANALYST = "Sparklio Analyst"
BRAND_VIEWER = "Sparklio Limited Viewer"  # a viewer limited to brands
ALERTS_ROLE = "Sparklio Alerts"  # the viewer's rights and CSV (a chart's CSV report): the alerts' user only
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


def new_user_problem(username: str, password: str, email: str | None) -> str | None:
    """Why these cannot be a new user's name, password and e-mail (None: they can)."""
    return username_problem(username) or config.password_problem(password) or \
        (email_problem(email) if email is not None else None)


class RolesError(ExpectedError):
    """A user, brand or role named on the command line does not exist."""


def check_brands(url: str, settings: config.Settings, brands: tuple[int, ...]) -> None:
    """RolesError naming the brand ids that the analytics `brands` view does not hold."""
    if not brands:
        return
    with database.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select brand_id from {settings.analytics_schema}.brands where brand_id = any(%s)",
                    (list(brands),))
        missing = sorted(set(brands) - {row[0] for row in cur.fetchall()})
    if missing:
        raise RolesError(f"no brand with id {', '.join(map(str, missing))} in {settings.analytics_schema}.brands")


def analytics_datasets() -> list:
    """The datasets on the bundle's databases (the analytics one and the server-health one)."""
    models = internals.models()
    datasets, databases = models["datasets"], models["databases"]
    return (internals.session().query(datasets).join(databases, datasets.database_id == databases.id)
            .filter(databases.database_name.in_(DATABASE_NAMES)).order_by(datasets.table_name).all())


def _analytics_database():
    return internals.session().query(internals.models()["databases"]).filter_by(database_name=DATABASE_NAME).one_or_none()


def viewer_permissions(datasets: list | None = None) -> set[tuple[str, str]]:
    """The dashboards and these datasets (default: every dataset of the bundle)."""
    security_manager = internals.security()
    granted = {("datasource_access", table.perm) for table in (analytics_datasets() if datasets is None else datasets)}
    return set(security_manager.PUBLIC_ROLE_PERMISSIONS) | VIEWER_EXTRA | granted


def analyst_permissions() -> set[tuple[str, str]]:
    security_manager = internals.security()
    database = _analytics_database()
    sql_lab = set(security_manager.SQLLAB_ONLY_PERMISSIONS) | set(security_manager.SQLLAB_EXTRA_PERMISSION_VIEWS)
    own_database = {("database_access", database.perm)} if database is not None else set()
    return viewer_permissions() | sql_lab | own_database


def _set_role(name: str, pairs: set[tuple[str, str]]) -> None:
    """The role holds exactly these permissions (those Superset has; others are skipped)."""
    security_manager = internals.security()
    role = security_manager.add_role(name)
    found = [security_manager.find_permission_view_menu(perm, view) for perm, view in sorted(pairs)]
    role.permissions = [pvm for pvm in found if pvm is not None]
    internals.session().commit()


def sync() -> list[str]:
    """Create or reset the viewer and analyst roles, and re-point every brand rule at every
    dataset with a brand column; returns the role names."""
    _set_role(VIEWER, viewer_permissions())
    _set_role(ANALYST, analyst_permissions())
    _set_role(BRAND_VIEWER, viewer_permissions(brand_datasets()))
    _set_role(ALERTS_ROLE, viewer_permissions() | {("can_csv", "Superset")})
    for role in _brand_roles():
        _ensure_brand_rule(int(role.name[len(BRAND_ROLE_PREFIX):]), role)
    _limit_brand_users()
    return [VIEWER, ANALYST, BRAND_VIEWER, ALERTS_ROLE]


def _limit_brand_users() -> None:
    """Users given a brand before the brand viewer role existed (viewer or analyst beside a
    brand role) hold the brand viewer role instead: the others read datasets no rule limits."""
    security_manager = internals.security()
    brand_viewer = security_manager.find_role(BRAND_VIEWER)
    for user in internals.session().query(security_manager.user_model).all():
        names = {role.name for role in user.roles}
        if any(name.startswith(BRAND_ROLE_PREFIX) for name in names) and names & {VIEWER, ANALYST}:
            user.roles = [role for role in user.roles if role.name not in (VIEWER, ANALYST, BRAND_VIEWER)] + [brand_viewer]
    internals.session().commit()


def _brand_roles() -> list:
    security_manager = internals.security()
    return [role for role in security_manager.get_all_roles() if role.name.startswith(BRAND_ROLE_PREFIX)
            and role.name[len(BRAND_ROLE_PREFIX):].isdigit()]


NO_BRAND_ANALYST = ("a brand-limited user can only be a viewer: SQL Lab reads every view whole, whatever "
                    "the brand rules say")


def brand_datasets() -> list:
    """The bundle's datasets that have a brand_id column: what a brand rule restricts."""
    return [table for table in analytics_datasets() if any(c.column_name == BRAND_COLUMN for c in table.columns)]


def _ensure_brand_rule(brand_id: int, role) -> None:
    name = f"{BRAND_RULE_PREFIX}{brand_id}"
    data = {"name": name, "filter_type": "Regular", "group_key": "brand", "clause": f"{BRAND_COLUMN} = {brand_id}",
            "description": f"Rows of brand {brand_id} only (sparklio-bi)",
            "tables": [table.id for table in brand_datasets()], "roles": [role.id]}
    rule = internals.session().query(internals.models()["rls_rules"]).filter_by(name=name).one_or_none()
    internals.save_rls_rule(None if rule is None else rule.id, data)


def brand_role(brand_id: int):
    """The role of one brand, with its rule (created on first use)."""
    security_manager = internals.security()
    role = security_manager.add_role(f"{BRAND_ROLE_PREFIX}{brand_id}")
    _ensure_brand_rule(brand_id, role)
    return role


def add_user(username: str, password: str, access: str, brands: tuple[int, ...] = (),
             email: str | None = None) -> str:
    """Create a Superset user with the viewer or analyst role, limited to `brands` if any (then
    with the limited viewer role); returns the role's name."""
    security_manager = internals.security()
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


def ensure_alerts_executor() -> bool:
    """The user alerts and reports run as (superset_config's ALERT_REPORTS_EXECUTORS): the alerts
    role only (the viewer's rights and CSV) and a random password nobody knows (Superset logs its
    browser in without one); True when created."""
    security_manager = internals.security()
    user = security_manager.find_user(username=config.ALERTS_EXECUTOR)
    role = security_manager.find_role(ALERTS_ROLE)
    if user is not None:
        if [held.name for held in user.roles] != [ALERTS_ROLE]:
            user.roles = [role]
            security_manager.update_user(user)
        return False
    if not security_manager.add_user(config.ALERTS_EXECUTOR, "Sparklio", "Alerts", f"{config.ALERTS_EXECUTOR}@sparklio.local",
                                     [role], password=datadir.new_secret(32)):
        raise RolesError(f"Superset refused to create the alerts' user {config.ALERTS_EXECUTOR!r}")
    return True


def set_brands(username: str, brands: tuple[int, ...]) -> None:
    """Limit a user to these brands (none: every brand), keeping its other roles."""
    security_manager = internals.security()
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
