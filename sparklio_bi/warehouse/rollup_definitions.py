"""The five rollups of Sparklio's rows (each a family of tables, see rollups.py): what each follows
and adds up. Their own module so that the refresh and the checks against the raw views
(rollup_checks.py) both read them without importing each other."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rollup:
    name: str  # rollup_state.rollup; tables <name>_rollup, function <name>_buckets, view <name>_stats
    source: str  # the application table whose changes it follows
    whole_table: bool  # look for changed rows in the whole table (else in the recent ids)
    recent_failures: bool = False  # also failures of the last rollups.RECOVERY_WINDOW (recoveries)
    raw: str = ""  # the analytics view its buckets add up (one rollup row counts `count` of its rows)
    count: str = ""  # the rollup's column holding that count
    # with brand columns: its other dimensions and its sums, added up over every brand in the
    # <name>_hours_all_brands, <name>_rollup_all_brands and <name>_months_all_brands tables
    other_dims: tuple[str, ...] = ()
    sums: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"{self.name}_rollup"

    @property
    def families(self) -> list[str]:
        """The suffixes of its tables: the rows per brand (""), and over all brands when it has brands."""
        return [""] + (["_all_brands"] if self.other_dims else [])


ROLLUPS = (
    Rollup("agent", "agent_logs", whole_table=False, recent_failures=True, raw="agent_logs", count="executions",
           other_dims=("agent_name", "model"), sums=("executions", "successes", "latency_ms_sum")),
    Rollup("error", "agent_logs", whole_table=False, recent_failures=True, raw="errors", count="failures",
           other_dims=("agent_name", "model", "error_type"),
           sums=("failures", "still_failing", "recovered", "recovery_seconds_sum")),
    Rollup("router", "router_logs", whole_table=False, raw="router_logs", count="decisions"),
    Rollup("workflow", "workflows", whole_table=True, raw="workflows", count="runs",
           other_dims=("status",), sums=("runs", "durations", "duration_seconds_sum")),
    Rollup("asset", "assets", whole_table=True, raw="assets", count="assets",
           other_dims=("asset_type",), sums=("assets", "reviewed", "approved", "scored", "review_score_sum")),
)
