"""The cost of one round of the KPI exporter (`sparklio-bi metrics serve`) on the bench's data."""
from __future__ import annotations

import statistics

from sparklio_bi import config
from sparklio_bi.ops import metrics
from sparklio_bi.quality.bench.harness import BenchError, Progress


def measure_exporter_round(reader_url: str, settings: config.Settings, rounds: int,
                           progress: Progress = lambda line: None) -> dict:
    """`rounds` rounds back to back as the reader role, after a first (cold) one reported apart:
    the wall time of a round and the median of each query, in seconds."""
    collector = metrics.KpiCollector(reader_url, settings)
    failed = collector.run_round()
    first = collector.round_seconds
    walls, per_query = [], {}
    for _ in range(rounds):
        failed = failed or collector.run_round()
        walls.append(collector.round_seconds)
        for name, seconds in collector.query_seconds.items():
            per_query.setdefault(name, []).append(seconds)
    if failed:
        raise BenchError(f"the exporter's queries failed: {', '.join(failed)}")
    result = {"first_round_seconds": round(first, 4), "rounds": rounds,
              "round_seconds": {"median": round(statistics.median(walls), 4), "max": round(max(walls), 4),
                                "min": round(min(walls), 4)},
              "query_seconds_median": {name: round(statistics.median(v), 4) for name, v in per_query.items()}}
    progress(f"exporter round: median {result['round_seconds']['median'] * 1000:.0f} ms over {rounds} rounds "
             f"(max {result['round_seconds']['max'] * 1000:.0f} ms)")
    return result
