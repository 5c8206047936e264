"""Alerts and reports as code: one YAML file per alert or report in alerts/ (the format is named
here, FIELDS), checked offline (`problems`) and turned into what Superset's `/api/v1/report/`
takes (`payload`) or back (`from_report`). Thresholds and parameters are the file's own numbers;
`${param}` in the SQL is replaced by the file's `params` before anything reads it. Recipients
name environment variables only: the addresses, URLs and channels stay out of git. An alert's
SQL is held to the chart queries' function rules (query_rules), its recipients are capped and
its webhooks go to public addresses only (Settings.alerts_max_recipients,
alerts_allow_private_webhooks)."""
from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import sqlglot
import yaml
from croniter import croniter
from sqlglot import exp

from sparklio_bi import config
from sparklio_bi.errors import ExpectedError
from sparklio_bi.superset import query_rules
from sparklio_bi.superset.assets.files import load_yaml
from sparklio_bi.warehouse import views

ALERTS_DIR = config.PROJECT_ROOT / "alerts"
KINDS = ("alert", "report")
OPERATORS = ("<", "<=", ">", ">=", "==", "!=")
FORMATS = ("PNG", "CSV")
# Superset's recipient types (ReportRecipientType) by the word the files use
RECIPIENT_TYPES = {"email": "Email", "webhook": "Webhook", "slack": "Slack"}
FIELDS = {  # field -> (required for an alert, required for a report, type), in the files' order
    "name": (True, True, str), "type": (True, True, str), "description": (False, False, str),
    "dashboard": (False, False, str), "chart": (False, False, str), "format": (False, True, str),
    "schedule": (True, True, str), "params": (False, False, dict), "sql": (True, False, str),
    "condition": (True, False, dict), "grace_period": (False, False, int), "working_timeout": (False, False, int),
    "active": (False, False, bool), "recipients": (True, True, list),
}
DEFAULT_GRACE_SECONDS = 14400  # Superset's own defaults
DEFAULT_WORKING_TIMEOUT = 3600
PARAM = re.compile(r"\$\{([a-z_][a-z0-9_]*)\}")
VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*$")
TARGETS = re.compile(r"[,;\s]+")  # how Superset splits an email or Slack target (recipients_string_to_list)
# What a webhook may not resolve to (ipaddress's names), unless alerts_allow_private_webhooks:
# Superset's worker would post the alert from inside the network (loopback services, cloud metadata)
NON_PUBLIC = ("unspecified", "loopback", "link_local", "private", "reserved", "multicast")


class AlertsError(ExpectedError):
    """The alerts folder has problems (listed), or Superset refused a change."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Definition:
    """One alert or report as its file says it."""

    path: Path
    data: dict = field(repr=False)

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def is_alert(self) -> bool:
        return self.data.get("type") == "alert"

    def sql(self) -> str:
        """The SQL with its `${param}`s replaced by the file's params."""
        params = self.data.get("params") or {}
        return PARAM.sub(lambda m: str(params[m.group(1)]), self.data["sql"]).strip()

    def recipients(self, env: dict[str, str]) -> list[dict]:
        """[{type, to: VARIABLE, target: its value}] of the recipients whose variable is set."""
        return [{**r, "target": env[r["to"]]} for r in self.data["recipients"] if env.get(r["to"])]


def load(folder: Path = ALERTS_DIR) -> list[Definition]:
    """Every *.yaml of the folder, sorted by file name (unchecked: see `problems`)."""
    if not folder.is_dir():
        raise AlertsError(f"{folder} is not a folder of alert files")
    found = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = load_yaml(path.read_text())
        except yaml.YAMLError as exc:
            data = {"_error": str(exc).splitlines()[0]}
        found.append(Definition(path, data if isinstance(data, dict) else {"_error": "not a mapping"}))
    return found


def problems(definitions: list[Definition], settings: config.Settings, env: dict[str, str] | None = None) -> list[str]:
    """Everything wrong with the files, one line each (empty: valid); offline but for resolving
    the webhooks' host names."""
    env = os.environ if env is None else env
    found = []
    names: dict[str, Path] = {}
    for definition in definitions:
        lines = _problems_of(definition, env, settings)
        found += [f"{definition.path.name}: {line}" for line in lines]
        name = definition.data.get("name")
        if not lines and name in names:
            found.append(f"{definition.path.name}: the name {name!r} is taken by {names[name].name}")
        names.setdefault(name, definition.path)
    return found


def checked(folder: Path, settings: config.Settings, env: dict[str, str] | None = None) -> list[Definition]:
    """The folder's definitions; AlertsError listing its problems when there are any."""
    definitions = load(folder)
    found = problems(definitions, settings, env)
    if found:
        raise AlertsError(f"{len(found)} problem(s) in {folder}: {found[0]}", found)
    return definitions


def _problems_of(definition: Definition, env, settings: config.Settings) -> list[str]:
    data = definition.data
    if "_error" in data:
        return [f"not valid YAML ({data['_error']})"]
    kind = data.get("type")
    if kind not in KINDS:
        return [f"type must be one of {', '.join(KINDS)}"]
    found = [f"unknown field {key!r}" for key in data if key not in FIELDS]
    for key, (for_alert, for_report, kind_of) in FIELDS.items():
        required = for_alert if kind == "alert" else for_report
        if key not in data:
            found += [f"{key} is missing"] if required else []
        elif not isinstance(data[key], kind_of) or (kind_of is int and isinstance(data[key], bool)):
            found.append(f"{key} must be a {kind_of.__name__}")
    if found:
        return found
    if not 1 <= len(data["name"]) <= 150:
        found.append("name must have 1 to 150 characters")
    if not croniter.is_valid(data["schedule"]):
        found.append(f"schedule {data['schedule']!r} is not a valid cron expression")
    for key in ("grace_period", "working_timeout"):
        if key in data and data[key] < 1:
            found.append(f"{key} must be a number of seconds above 0")
    if bool(data.get("dashboard")) == bool(data.get("chart")):
        found.append("name exactly one of dashboard (its title) or chart (its name)")
    found += _recipient_problems(data["recipients"], env, settings)
    if kind == "alert":
        found += _condition_problems(data["condition"]) + _sql_problems(definition)
    elif data["format"] not in FORMATS or (data["format"] == "CSV" and not data.get("chart")):
        found.append(f"format must be one of {', '.join(FORMATS)} (CSV of a chart only)")
    return found


def _recipient_problems(recipients: list, env, settings: config.Settings) -> list[str]:
    found = []
    for recipient in recipients:
        if not isinstance(recipient, dict) or recipient.get("type") not in RECIPIENT_TYPES \
                or not VARIABLE.match(str(recipient.get("to", ""))):
            found.append(f"recipient {recipient!r}: needs type ({', '.join(RECIPIENT_TYPES)}) and to: "
                         "an environment variable's NAME (upper case), never an address")
        elif not env.get(recipient["to"]) and not recipient.get("optional"):
            found.append(f"recipient variable {recipient['to']} is not set")
        elif env.get(recipient["to"]) and recipient["type"] == "webhook":
            found += filter(None, [_webhook_problem(recipient["to"], env[recipient["to"]], settings)])
    if found:
        return found
    targets = [target for r in recipients if env.get(r["to"])
               for target in ([env[r["to"]]] if r["type"] == "webhook" else TARGETS.split(env[r["to"]])) if target]
    if not targets:
        return ["no recipient: none of its variables is set"]
    if len(targets) > settings.alerts_max_recipients:
        return [f"{len(targets)} recipients: at most {settings.alerts_max_recipients} "
                "(SPARKLIO_ALERTS_MAX_RECIPIENTS)"]
    return []


def _webhook_problem(variable: str, url: str, settings: config.Settings) -> str | None:
    """Why the webhook in `variable` is refused (None: fine): not an http(s) URL, or its host
    resolves to a loopback, private or reserved address. The URL itself is never printed: it may
    carry a token."""
    refused = f"recipient {variable} is not an http(s) URL with a host"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - parsing the port raises on one past 65535
    except ValueError:
        return refused
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return refused
    if settings.alerts_allow_private_webhooks:
        return None
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
    except (OSError, UnicodeError):
        return (f"recipient {variable}: its host {host} does not resolve here, so it cannot be checked for a "
                "private address (SPARKLIO_ALERTS_ALLOW_PRIVATE_WEBHOOKS=true skips the check)")
    for address in addresses:
        kind = _non_public(ipaddress.ip_address(address.split("%")[0]))  # a link-local IPv6 has a %zone
        if kind:
            return (f"recipient {variable}: its host {host} is {address}, a {kind} address: webhooks go to public "
                    "addresses only (SPARKLIO_ALERTS_ALLOW_PRIVATE_WEBHOOKS=true for a receiver on your own network)")
    return None


def _non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What kind of non-public address it is (None: a public one); ::ffff:127.0.0.1 is 127.0.0.1."""
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    kind = next((kind for kind in NON_PUBLIC if getattr(address, f"is_{kind}")), None)
    return kind.replace("_", "-") if kind else None if address.is_global else "non-public"


def _condition_problems(condition: dict) -> list[str]:
    if condition.get("operator") not in OPERATORS:
        return [f"condition operator must be one of {' '.join(OPERATORS)}"]
    threshold = condition.get("threshold")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        return ["condition threshold must be a number"]
    return []


def _sql_problems(definition: Definition) -> list[str]:
    """The SQL parses, is one SELECT of one column with one row, and reads only analytics views."""
    params = definition.data.get("params") or {}
    unknown = sorted(set(PARAM.findall(definition.data["sql"])) - set(params))
    if unknown:
        return [f"sql uses ${{{unknown[0]}}} but params has no {unknown[0]}"]
    try:
        statements = [s for s in sqlglot.parse(definition.sql(), read="postgres") if s is not None]
    except sqlglot.errors.ParseError as exc:
        return [f"sql does not parse: {str(exc).splitlines()[0]}"]
    if len(statements) != 1 or not isinstance(statements[0], exp.Select):
        return ["sql must be one SELECT statement"]
    select = statements[0]
    if select.find(exp.Insert, exp.Update, exp.Delete, exp.Merge):
        return ["sql must only read: no INSERT, UPDATE, DELETE or MERGE, in a WITH either"]
    found = []
    if len(select.expressions) != 1 or isinstance(select.expressions[0], exp.Star):
        found.append(f"sql must return one column, not {len(select.expressions)}")
    if select.args.get("group") and not select.args.get("limit"):
        found.append("sql must return one row: no GROUP BY at its top level")
    ctes = {cte.alias for cte in select.find_all(exp.CTE)}
    known = set(views.all_versions())
    for table in select.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        if table.db != "analytics" or table.name not in known:
            found.append(f"sql reads {table.sql(dialect='postgres')}: only analytics views "
                         f"({', '.join(sorted(known))})")
    try:  # the functions a chart query may call, on PostgreSQL's own parse (the files say analytics.)
        query_rules.check_chart_sql(definition.sql(), "analytics")
    except query_rules.RefusedQuery as refused:
        found.append(f"sql is refused: {refused}")
    return found


def payload(definition: Definition, env: dict[str, str], ids: dict[str, int], settings: config.Settings) -> dict:
    """What `/api/v1/report/` takes for this definition: `ids` holds the database's id and the
    dashboard's or chart's; the schedule runs in SPARKLIO_TIMEZONE."""
    data = definition.data
    target = "dashboard" if data.get("dashboard") else "chart"
    body = {
        "type": "Alert" if definition.is_alert else "Report", "name": data["name"],
        "description": data.get("description", ""), "crontab": data["schedule"], "timezone": settings.timezone,
        "active": data.get("active", True), "creation_method": "alerts_reports",
        "grace_period": data.get("grace_period", DEFAULT_GRACE_SECONDS),
        "working_timeout": data.get("working_timeout", DEFAULT_WORKING_TIMEOUT),
        "report_format": data.get("format", "PNG"), target: ids[target],
        "recipients": [{"type": RECIPIENT_TYPES[r["type"]], "recipient_config_json": {"target": r["target"]}}
                       for r in definition.recipients(env)],
    }
    if definition.is_alert:
        condition = data["condition"]
        body.update(sql=in_schema(definition.sql(), settings.analytics_schema), database=ids["database"],
                    validator_type="operator",
                    validator_config_json={"op": condition["operator"], "threshold": float(condition["threshold"])})
    return body


def in_schema(sql: str, schema: str) -> str:
    """The files say `analytics.`; Superset reads ANALYTICS_SCHEMA."""
    return sql if schema == "analytics" else re.sub(r"\banalytics\.", f"{schema}.", sql)


def from_report(report: dict, kept: Definition | None, env: dict[str, str], settings: config.Settings) -> dict:
    """A report or alert as Superset holds it (GET /api/v1/report/<id>), as its file says it:
    the kept file's SQL and params when they render to Superset's SQL, recipients as the names of
    the variables holding them (the kept file's first, then any variable with that value)."""
    is_alert = report["type"] == "Alert"
    data = {"name": report["name"], "type": "alert" if is_alert else "report"}
    if report.get("description"):
        data["description"] = report["description"]
    if report.get("dashboard"):
        data["dashboard"] = report["dashboard"]["dashboard_title"]
    else:
        data["chart"] = report["chart"]["slice_name"]
    if not is_alert:
        data["format"] = report["report_format"]
    data["schedule"] = report["crontab"]
    if is_alert:
        sql = re.sub(rf"\b{settings.analytics_schema}\.", "analytics.", report["sql"].strip())  # as the files say it
        if kept and kept.is_alert and "sql" in kept.data and kept.sql() == sql:
            if kept.data.get("params"):
                data["params"] = kept.data["params"]
            sql = kept.data["sql"].strip()
        data["sql"] = sql + "\n"
        validator = yaml.safe_load(report["validator_config_json"] or "{}")
        threshold = validator.get("threshold")
        data["condition"] = {"operator": validator.get("op"),
                             "threshold": int(threshold) if float(threshold).is_integer() else threshold}
    defaults = {"grace_period": DEFAULT_GRACE_SECONDS, "working_timeout": DEFAULT_WORKING_TIMEOUT}
    for key, default in defaults.items():  # a default is written only where the kept file writes it
        if report.get(key) not in (None, default) or (kept and key in kept.data):
            data[key] = report[key]
    if not report.get("active", True):
        data["active"] = False
    data["recipients"] = [_recipient_entry(r, kept, env) for r in report.get("recipients", [])]
    return data


def _recipient_entry(recipient: dict, kept: Definition | None, env: dict[str, str]) -> dict:
    kind = next(k for k, v in RECIPIENT_TYPES.items() if v == recipient["type"])
    target = yaml.safe_load(recipient.get("recipient_config_json") or "{}").get("target")
    named = [r["to"] for r in (kept.data.get("recipients", []) if kept else []) if r.get("type") == kind]
    names = named + sorted(name for name, value in env.items() if value == target and VARIABLE.match(name))
    found = next((name for name in names if env.get(name) == target), None)
    entry = {"type": kind, "to": found or f"SPARKLIO_ALERT_{kind.upper()}"}
    kept_entry = next((r for r in (kept.data.get("recipients", []) if kept else []) if r.get("to") == entry["to"]), {})
    return {**entry, "optional": True} if kept_entry.get("optional") else entry


def file_name(name: str) -> str:
    """A file name for a new definition: its name, lower case, words joined by _."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:80] + ".yaml"


def dump(data: dict) -> str:
    """The file's text: fields in FIELDS' order, block style."""
    ordered = {key: data[key] for key in FIELDS if key in data}
    return yaml.dump(ordered, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


class _Dumper(yaml.SafeDumper):
    """SQL as a literal block; a recipient or condition on one line."""


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))
_Dumper.add_representer(dict, lambda dumper, value: dumper.represent_mapping(
    "tag:yaml.org,2002:map", value, flow_style=len(value) <= 3 and not any(isinstance(v, (dict, list)) for v in value.values())))
