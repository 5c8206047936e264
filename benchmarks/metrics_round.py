"""The cost of one round of the KPI exporter (`sparklio-bi metrics serve`) on a seeded database:
runs ROUNDS rounds back to back as the reader role (the function `sparklio-bi bench` calls for
results.json's "metrics_exporter") and writes benchmarks/metrics-round.json (wall time of a round,
the median of each query, the source's row counts, the machine), without a Superset.

Point it at a seeded bundle through the usual settings, e.g. the one `sparklio-bi seed --scale
1000` and `sparklio-bi db upgrade` made in SPARKLIO_DATA_DIR:

    SPARKLIO_DATA_DIR=/tmp/big SPARKLIO_PG_PORT=55491 python benchmarks/metrics_round.py --rounds 20
"""
from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import click

from sparklio_bi import config
from sparklio_bi.postgres import database, privileges
from sparklio_bi.quality.bench.exporter import measure_exporter_round

OUT = Path(__file__).resolve().parent / "metrics-round.json"


@click.command()
@click.option("--rounds", type=click.IntRange(min=3), default=20, show_default=True)
def main(rounds: int) -> None:
    settings = config.load()
    owner = database.analytics_url(settings)
    reader = privileges.ensure_login(owner, settings)
    with database.connect(owner) as conn, conn.cursor() as cur:
        counts = {}
        for table in ("agent_logs", "workflows", "router_logs", "assets", "projects"):
            cur.execute(f"select count(*) from {settings.source_schema}.{table}")
            counts[table] = cur.fetchone()[0]
    measured = measure_exporter_round(reader, settings, rounds)
    result = {
        "command": f"SPARKLIO_DATA_DIR=D SPARKLIO_PG_PORT=P python benchmarks/metrics_round.py --rounds {rounds}",
        "data": "made in D with `sparklio-bi seed --scale 1000 --seed 42`, `sparklio-bi db upgrade`, "
                "`sparklio-bi collect --once` (scale 1000: 10 million agent_logs); the embedded server",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "source_rows": counts,
        **measured,
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
