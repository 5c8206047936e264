"""Superset 6.1.0 configuration of sparklio-bi: every setting comes from the environment,
with a safe default for the embedded demo (see README, "Configuration")."""
import logging
import os
import re
import shutil
import sys

from sparklio_bi import config as bundle_config
from sparklio_bi import datadir
from sparklio_bi.postgres import database
from sparklio_bi.superset import event_log, secret_key
from sparklio_bi.superset.assets.layout import all_brands_when_unused, exact_when_filtered, literal_time_bounds

try:
    _settings = bundle_config.load()
except bundle_config.ConfigError as _error:  # one line, whatever starts Superset
    raise SystemExit(f"Error: {_error}") from None


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _demo_secret_key() -> str:
    """In demo mode a random key is made once and kept in .data/ (never in git)."""
    return datadir.kept_secret(secret_key.key_file(_settings), lambda: datadir.new_secret(42))[0]


# Superset's metadata lives in PostgreSQL: a `superset` database beside the analytics one.
SQLALCHEMY_DATABASE_URI = database.superset_metadata_url(_settings, start=False)
# Superset's audit trail (the `logs` table) in batches, off the request path: its DBEventLogger
# commits 6 times per forced chart request (issue 16). Written every SUPERSET_AUDIT_FLUSH_SECONDS
# by each web process, and at its exit.
EVENT_LOGGER = event_log.batched_event_logger(SQLALCHEMY_DATABASE_URI,
                                              every=float(_env("SUPERSET_AUDIT_FLUSH_SECONDS", "2")))
SQLALCHEMY_TRACK_MODIFICATIONS = False


_problem = secret_key.startup_problem(_settings)
if _problem:  # one line and no traceback, whatever starts Superset (gunicorn, superset CLI)
    if "gunicorn.arbiter" in sys.modules:  # gunicorn's "worker failed to boot": it halts instead of retrying
        print(f"Error: {_problem}", file=sys.stderr)
        raise SystemExit(3)
    raise SystemExit(f"Error: {_problem}")
SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY") or _demo_secret_key()
if os.environ.get("PREVIOUS_SECRET_KEY"):  # `superset re-encrypt-secrets` reads it
    PREVIOUS_SECRET_KEY = os.environ["PREVIOUS_SECRET_KEY"]

SUPERSET_WEBSERVER_PORT = int(_env("SUPERSET_PORT", "8088"))
ROW_LIMIT = int(_env("SUPERSET_ROW_LIMIT", "50000"))
# SQL Lab returns at most this many rows whatever the query asks (the LIMIT is rewritten).
SQL_MAX_ROW = int(_env("SUPERSET_SQL_MAX_ROW", "100000"))
DISPLAY_MAX_ROW = min(10000, SQL_MAX_ROW)
# Superset's own timeouts rely on a signal alarm that gunicorn's threaded workers never fire:
# the real limit is the reader role's statement_timeout in PostgreSQL
# (SPARKLIO_READER_STATEMENT_TIMEOUT). These only bound what Superset waits for.
SQLLAB_TIMEOUT = int(_env("SUPERSET_SQLLAB_TIMEOUT", "60"))
SUPERSET_WEBSERVER_TIMEOUT = int(_env("SUPERSET_WEBSERVER_TIMEOUT", "60"))

# The reference SQL's windows are rolling up to now (NOW() - INTERVAL '7 days'); Superset's
# relative ranges end at today's midnight by default, which hides today from an ops dashboard.
DEFAULT_RELATIVE_START_TIME = "now"
DEFAULT_RELATIVE_END_TIME = "now"

# Caching: Redis when REDIS_URL is set, else files in the data dir, which every gunicorn worker
# shares (an in-process cache is per worker: half of the second loads missed). Chart data is
# kept briefly so dashboards stay current (SUPERSET_DATA_CACHE_TIMEOUT seconds; with the rollup
# refresh every 30 s, a late row shows within a minute).
_REDIS_URL = _settings.redis_url
_DATA_TIMEOUT = int(_env("SUPERSET_DATA_CACHE_TIMEOUT", "30"))
_CACHE_DIR = _settings.data_dir / datadir.SUPERSET_CACHE


def _cache(prefix: str, timeout: int) -> dict:
    if _REDIS_URL:
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": _REDIS_URL,
                "CACHE_KEY_PREFIX": f"sparklio_{prefix}_", "CACHE_DEFAULT_TIMEOUT": timeout}
    return {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(_CACHE_DIR / prefix), "CACHE_THRESHOLD": 20000,
            "CACHE_DEFAULT_TIMEOUT": timeout}


CACHE_CONFIG = _cache("meta", 300)
DATA_CACHE_CONFIG = _cache("data", _DATA_TIMEOUT)
FILTER_STATE_CACHE_CONFIG = _cache("filter", 86400)
EXPLORE_FORM_DATA_CACHE_CONFIG = _cache("explore", 86400)

if _REDIS_URL:
    # Superset's own Celery settings (its task modules and the beat entries reports.scheduler, every
    # minute, and reports.prune_log), on Redis; `serve` runs the worker and beat beside gunicorn
    from superset.config import CeleryConfig as _SupersetCelery

    class CeleryConfig(_SupersetCelery):  # noqa: D101 - Superset reads this class by name
        broker_url = _REDIS_URL
        result_backend = _REDIS_URL

    CELERY_CONFIG = CeleryConfig

FEATURE_FLAGS = {
    # Alerts & Reports need Celery (worker and beat), so Redis: on by default when REDIS_URL is set
    "ALERT_REPORTS": _env("SUPERSET_ALERT_REPORTS", "true" if _REDIS_URL else "false").lower() == "true",
    # Superset's webhook notification method (alerts/*.yaml `type: webhook`)
    "ALERT_REPORT_WEBHOOK": True,
    # An alert sends its name, value and link only; without this Superset would also screenshot the
    # alert's dashboard at every firing (the reports in alerts/ send their PNG or CSV)
    "ALERTS_ATTACH_REPORTS": False,
    # Brand rules (row-level security) apply to SQL Lab queries on the datasets they name too.
    "RLS_IN_SQLLAB": True,
    # The rollup datasets' SQL reads the chart's time range ({{ from_dttm }}, {{ to_dttm }}) and
    # answers exactly that range (sparklio_bi.superset.assets.ranged_sql); SQL Lab gets Jinja with it.
    "ENABLE_TEMPLATE_PROCESSING": True,
}

# --- Alerts & Reports (alerts/*.yaml; README "Alerts and reports") ------------------------------
# Every alert and report runs as one dedicated low-privilege user (role Sparklio Alerts: it may open
# the dashboards, read their charts and their CSV, nothing else), never as whoever last edited it; its SQL
# runs on the Sparklio Analytics database, which connects as the read-only reader role.
from superset.tasks.types import FixedExecutor  # noqa: E402

ALERT_REPORTS_EXECUTORS = [FixedExecutor(bundle_config.ALERTS_EXECUTOR)]
# Email: Superset's defaults (STARTTLS on, user and password "superset") fail against a plain
# server; here nothing is assumed: no login unless SMTP_USER is set, no TLS unless asked for.
SMTP_HOST = _env("SMTP_HOST", "localhost")
SMTP_PORT = int(_env("SMTP_PORT", "25"))
SMTP_STARTTLS = _env("SMTP_STARTTLS", "false").lower() == "true"
SMTP_SSL = _env("SMTP_SSL", "false").lower() == "true"
SMTP_SSL_SERVER_AUTH = _env("SMTP_SSL_SERVER_AUTH", "true").lower() == "true"  # check the server's certificate
SMTP_USER = os.environ.get("SMTP_USER") or None
SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD") or None
SMTP_MAIL_FROM = _env("SMTP_MAIL_FROM", "sparklio-bi@localhost")
EMAIL_REPORTS_SUBJECT_PREFIX = _env("SPARKLIO_EMAIL_SUBJECT_PREFIX", "[Sparklio] ")
# Webhooks: https only unless SPARKLIO_WEBHOOK_HTTPS_ONLY=false (a receiver on a private network)
ALERT_REPORTS_WEBHOOK_HTTPS_ONLY = _env("SPARKLIO_WEBHOOK_HTTPS_ONLY", "true").lower() == "true"
# Slack: a bot token (chat:write, files:write; channels:read to list channels)
SLACK_API_TOKEN = os.environ.get("SLACK_API_TOKEN") or None
if os.environ.get("SPARKLIO_SLACK_API_URL"):  # a Slack-compatible relay (the tests: a loopback server)
    from sparklio_bi.superset import slack as _slack

    _slack.point_slack_at(os.environ["SPARKLIO_SLACK_API_URL"])
# Screenshots (PNG reports): Debian's headless Chromium, on this install's own web server
WEBDRIVER_TYPE = "chrome"
WEBDRIVER_OPTION_ARGS = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--hide-scrollbars"]
_CHROMEDRIVER = shutil.which("chromedriver")
WEBDRIVER_CONFIGURATION = {
    "options": {"capabilities": {}, "preferences": {}},
    "service": {"log_output": "/dev/null", "service_args": [], "port": 0, "env": {},
                **({"executable_path": _CHROMEDRIVER} if _CHROMEDRIVER else {})},
}
_WEB_HOST = _env("SUPERSET_HOST", "127.0.0.1").replace("0.0.0.0", "127.0.0.1")  # noqa: S104 - read, not bound
WEBDRIVER_BASEURL = _env("SUPERSET_WEBDRIVER_BASEURL", f"http://{_WEB_HOST}:{SUPERSET_WEBSERVER_PORT}/")
# The links in emails and messages: where people reach Superset (behind HAProxy: its address)
WEBDRIVER_BASEURL_USER_FRIENDLY = _env("SUPERSET_PUBLIC_URL", WEBDRIVER_BASEURL)

# Behind a proxy (docker-compose) set ENABLE_PROXY_FIX=true.
ENABLE_PROXY_FIX = _env("ENABLE_PROXY_FIX", "false").lower() == "true"
WTF_CSRF_ENABLED = _env("WTF_CSRF_ENABLED", "true").lower() == "true"

# --- hardening ------------------------------------------------------------------------------
# Session cookies: never readable by scripts, not sent on cross-site posts, and only over
# TLS when it is there (behind a TLS proxy: ENABLE_PROXY_FIX=true, or SUPERSET_COOKIE_SECURE).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _env("SUPERSET_COOKIE_SECURE", str(ENABLE_PROXY_FIX)).lower() == "true"

# Login attempts per client address: the form (Flask-AppBuilder's AUTH_RATE_LIMIT) and the
# REST login (limited below). Counters live in Redis when REDIS_URL is set, else in each
# gunicorn worker's memory. No application-wide limit: a dashboard fires many requests at once.
RATELIMIT_ENABLED = True
RATELIMIT_APPLICATION = None
RATELIMIT_STORAGE_URI = _REDIS_URL or "memory://"
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = _env("SUPERSET_AUTH_RATE_LIMIT", "10 per minute")
logging.getLogger("flask-limiter").setLevel(logging.INFO)  # a hit limit is logged at INFO: show it

# SQL Lab: functions refused by Superset's parser before a query reaches PostgreSQL, on top of
# Superset's own list: those that run a query string, act on other sessions or touch settings
# (sparklio_bi.superset.query_rules, which SQL_QUERY_MUTATOR applies to every query on
# PostgreSQL's own parse). The reader role's privileges refuse the worst of them too.
from superset.config import DISALLOWED_SQL_FUNCTIONS  # noqa: E402

from sparklio_bi.superset import query_rules  # noqa: E402

# Superset's own check names its whole list when one function matches, on sqlglot's reading of
# the SQL; query_rules refuses all of it and more, naming the function, on PostgreSQL's parse, so
# Superset's list is handed over to it (refused at start-up if Superset ever refuses more).
if not DISALLOWED_SQL_FUNCTIONS["postgresql"] <= query_rules.REFUSED_FUNCTIONS:
    raise SystemExit("Error: Superset refuses functions sparklio_bi.superset.query_rules does not: "
                     f"{sorted(DISALLOWED_SQL_FUNCTIONS['postgresql'] - query_rules.REFUSED_FUNCTIONS)}")
DISALLOWED_SQL_FUNCTIONS = {**DISALLOWED_SQL_FUNCTIONS, "postgresql": set()}


# Only reads reach the database: a statement that does not start with a read keyword (SET,
# RESET, COPY, DO, BEGIN, LOCK, CALL, ...) is refused, so no SQL Lab statement can change its
# session (`set statement_timeout = 0`) before the next one. Applied to each SQL Lab statement
# and to every chart query (which are all SELECTs).
_LEADING_COMMENTS = r"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*"  # what may stand before a statement's first keyword
_READ_STATEMENT = re.compile(_LEADING_COMMENTS + r"(?:select|with|values|table|explain)\b", re.IGNORECASE | re.DOTALL)


# Bytes, not only rows: every read is wrapped so that PostgreSQL adds up the size of the rows it
# sends (pg_column_size of the subquery's whole row: uncompressed, about 0.5 us a row; casting
# rows to text costs 15 times more) and fails the query past this many bytes
# (analytics.refuse_large_result, migration 0011), before they reach a web worker (a 500 MB value
# took one from 360 MB to 2.2 GB). EXPLAIN is left as it is (it cannot be a subquery; it is small).
MAX_RESULT_BYTES = int(_env("SPARKLIO_SQL_MAX_RESULT_BYTES", str(64 * 2**20)))
_EXPLAIN = re.compile(_LEADING_COMMENTS + r"explain\b", re.IGNORECASE | re.DOTALL)


def bounded_read(sql: str, max_bytes: int = MAX_RESULT_BYTES) -> str:
    """The read, as a subquery whose rows stop at `max_bytes` with one clear error."""
    if _EXPLAIN.match(sql):
        return sql
    body = sql.strip().rstrip(";")
    guard = f"{_settings.analytics_schema}.refuse_large_result({int(max_bytes)})"
    return ("select (sparklio_bounded.sparklio_row).* from (\n"
            "select sparklio_row, sum(pg_column_size(sparklio_row)) over (rows unbounded preceding) as sparklio_bytes\n"
            f"from (\n{body}\n) as sparklio_row) as sparklio_bounded\n"
            f"where case when sparklio_bounded.sparklio_bytes <= {int(max_bytes)} then true else {guard} end")


def _refuse(message: str) -> None:
    from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
    from superset.exceptions import SupersetSecurityException

    raise SupersetSecurityException(SupersetError(message=message, error_type=SupersetErrorType.DML_NOT_ALLOWED_ERROR,
                                                  level=ErrorLevel.ERROR))


def SQL_QUERY_MUTATOR(sql: str, **kwargs) -> str:  # noqa: N802 - Superset reads this name
    """Refuse anything but a read (the reader role refuses writes too; this stops session
    changes), make a ranged dataset's rows exact when the query filters period_start other than
    by its time range (sparklio_bi.superset.assets.layout.exact_when_filtered), read the rollups added up
    over every brand when the query cannot see the brand (all_brands_when_unused), write
    Superset's time bounds as literals, not a call per row (literal_time_bounds), and bound the
    read's bytes."""
    if not _READ_STATEMENT.match(sql):
        first = (sql.strip().split(None, 1) or ["(empty)"])[0][:20]
        _refuse(f"Only read queries may run here: {first!r} statements are refused")
    try:
        if query_rules.in_sql_lab():  # SQL Lab's statements (patches.mark_sql_lab)
            query_rules.check_sql_lab_sql(sql)
        else:  # a chart, explore, a filter's values, an alert: anything a viewer may send
            query_rules.check_chart_sql(sql, _settings.analytics_schema)
    except query_rules.RefusedQuery as refused:
        _refuse(str(refused))
    return bounded_read(literal_time_bounds(all_brands_when_unused(exact_when_filtered(sql))))


# An alert's SQL goes through the same mutator as a chart's: Superset 6.1.0 calls it for an alert
# only with this flag (commands/report/alert.py), so without it an alert was held to neither the
# chart rules nor the result cap (issue 31, finding 8).
MUTATE_ALERT_QUERY = True


# Times on the charts and tables are the reporting zone's wall clock (SPARKLIO_TIMEZONE), not UTC:
# Superset's analytics connections read a timestamptz as the session zone's clock
# (sparklio_bi/superset/wall_clock.py; issue 31, finding 9).
def DB_CONNECTION_MUTATOR(uri, params, username, security_manager, source):  # noqa: N802 - Superset reads this name
    from sparklio_bi.superset import wall_clock

    return uri, wall_clock.with_wall_clock(params) if uri.drivername.startswith("postgresql") else params


# Superset 6.1.0 makes a new engine, and opens new connections, for every query: each process
# keeps one pooled engine per analytics database instead (sparklio_bi/superset/engines.py;
# issue 16). SUPERSET_KEEP_ENGINES=false gives Superset's own behaviour back (the bench compares).
KEEP_ENGINES = _env("SUPERSET_KEEP_ENGINES", "true").lower() == "true"


def FLASK_APP_MUTATOR(app):  # noqa: N802 - Superset reads this name
    """The bundle's changes to Superset (patches.py: SQL Lab's schema quoted, SQL Lab's statements
    marked, the analytics engines kept unless KEEP_ENGINES is off); rate-limit every login post
    (AUTH_RATE_LIMIT per client address); a deep /health and 503 JSON in an outage (health.py)."""
    from sparklio_bi.superset import health, patches

    patches.quote_search_path()
    patches.mark_sql_lab()
    if KEEP_ENGINES:
        patches.keep_engines()
    if AUTH_RATE_LIMITED:
        patches.limit_logins(app, AUTH_RATE_LIMIT)
    health.install(app)
