"""`alerts run NAME`: an alert's SQL evaluated once now, as Superset's alert would (as the
read-only reader role, its answer cut to two rows, one row and one numeric column expected), and
what it would send to whom; nothing is sent. The answer is capped (MAX_ANSWER_BYTES, counted by
PostgreSQL before it sends a row) and a failing SQL is one line."""
from __future__ import annotations

import operator
from dataclasses import dataclass

import psycopg2
from psycopg2 import errorcodes

from sparklio_bi import config
from sparklio_bi.postgres import database, privileges
from sparklio_bi.superset.alerts import definition
from sparklio_bi.superset.alerts.definition import AlertsError, Definition

COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
           "!=": operator.ne}
# An alert's answer is one number: a row past this is refused by PostgreSQL
# (analytics.refuse_large_result, migration 0011) before it reaches this process
MAX_ANSWER_BYTES = 2**20


@dataclass
class Outcome:
    """One evaluation: the value (None: no row or NULL), whether it fires, and who would be told."""

    name: str
    value: float | None
    fires: bool
    recipients: list[str]

    def lines(self, condition: dict | None) -> list[str]:
        if condition is None:
            return [f"{self.name}: a report, it always sends; it would send to {', '.join(self.recipients)}"]
        shown = "no value (no row or NULL: never fires)" if self.value is None else f"{self.value:g}"
        test = f"{condition['operator']} {condition['threshold']}"
        if not self.fires:
            return [f"{self.name}: {shown}, not {test}: it would send nothing"]
        return [f"{self.name}: {shown} {test}: it FIRES and would send to {', '.join(self.recipients)}"]


def find(definitions: list[Definition], name: str) -> Definition:
    """The definition named `name` (or whose file is `name`.yaml)."""
    for item in definitions:
        if name in (item.name, item.path.stem, item.path.name):
            return item
    raise AlertsError(f"no alert or report is named {name!r} (see `sparklio-bi alerts validate`)")


def run(item: Definition, settings: config.Settings, env: dict[str, str]) -> Outcome:
    """Evaluate `item` now (a report: only who it would go to)."""
    recipients = [f"{r['type']} {r['to']}" for r in item.recipients(env)]
    if not item.is_alert:
        return Outcome(item.name, None, True, recipients)
    url = privileges.reader_url(database.analytics_url(settings), settings)
    sql = definition.in_schema(item.sql(), settings.analytics_schema)
    try:
        with database.connect(url) as conn, conn.cursor() as cur:
            cur.execute(capped(sql, settings.analytics_schema))
            rows = cur.fetchall()
    except psycopg2.Error as exc:
        if exc.pgcode == errorcodes.PROGRAM_LIMIT_EXCEEDED:
            raise AlertsError(f"{item.name}: the SQL's answer is over {MAX_ANSWER_BYTES // 2**20} MB: "
                              "an alert needs one row of one number") from None
        reason = (exc.pgerror or str(exc)).strip().splitlines()[0].removeprefix("ERROR:").strip()
        raise AlertsError(f"{item.name}: the SQL failed: {reason}") from None
    if len(rows) > 1 or (rows and len(rows[0]) != 1):
        raise AlertsError(f"{item.name}: the SQL returned {len(rows)} rows of {len(rows[0])} columns: "
                          "an alert needs one row of one number")
    value = rows[0][0] if rows else None
    try:
        value = None if value is None else float(value)
    except (TypeError, ValueError):
        raise AlertsError(f"{item.name}: the SQL returned {value!r}, not a number") from None
    condition = item.data["condition"]
    fires = value is not None and COMPARE[condition["operator"]](value, float(condition["threshold"]))
    return Outcome(item.name, value, fires, recipients)


def capped(sql: str, schema: str) -> str:
    """`sql`'s first two rows (as Superset's alert reads them), each refused past MAX_ANSWER_BYTES."""
    guard = f"{schema}.refuse_large_result({MAX_ANSWER_BYTES})"
    return ("select (alert.alert_row).* from (\n"
            f"select alert_row, pg_column_size(alert_row) as alert_bytes from (\n{sql}\n) as alert_row limit 2\n"
            f") as alert where case when alert.alert_bytes <= {MAX_ANSWER_BYTES} then true else {guard} end")
