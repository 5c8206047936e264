"""Percentiles of timed runs."""
from __future__ import annotations

import time
from collections.abc import Callable

# The fewest samples a p95 is taken from where a target is a p95 of one request: with 5, the p95
# is the slowest but one plus most of the gap to the slowest, i.e. one request that met the
# refresh or the writer; with 20, one such request is the 5 % a p95 leaves out.
P95_SAMPLES = 20


def stats(samples_ms: list[float]) -> dict:
    """p50, p95 (linear interpolation between ranks) and max of some times, in ms."""
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        k = (len(ordered) - 1) * p
        low, high = int(k), min(int(k) + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (k - low)

    return {"p50": round(pct(0.5), 2), "p95": round(pct(0.95), 2), "max": round(ordered[-1], 2),
            "runs": len(ordered)}


def timed(fn: Callable[[], object], runs: int, warmups: int = 1) -> tuple[dict, object]:
    """Call fn `warmups` times untimed, then `runs` times timed: (stats in ms, last result)."""
    result = None
    for _ in range(warmups):
        result = fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    return stats(samples), result
