"""Distributions and series of a run for the report: result latency (a pod ended -> the executor
reported it), pod start latency, and API calls over time by status."""

from __future__ import annotations

from collections import Counter



SERIES_BINS = 60  # API calls over time: this many bins over the run


def try_of_pod(pod: dict) -> tuple | None:
    annotations = pod["metadata"].get("annotations") or {}
    if "dag_id" not in annotations or "try_number" not in annotations:
        return None
    return (annotations["dag_id"], annotations["task_id"], annotations.get("run_id"),
            str(annotations.get("map_index", "-1")), str(annotations["try_number"]))


def api_over_time(calls: list, run_end: float, bins: int = SERIES_BINS) -> dict:
    """Calls per status in equal bins over the run: {"bin_seconds": w, "series": {status: [n...]}}."""
    width = max(run_end, 1e-9) / bins
    series: dict[str, list[int]] = {}
    for call in calls:
        counts = series.setdefault(str(call.status), [0] * bins)
        counts[min(bins - 1, int(call.time / width))] += 1
    ordered = dict(sorted(series.items(), key=lambda kv: (not kv[0].isdigit(), kv[0])))
    return {"bin_seconds": width, "series": ordered}


def calls_by_verb(api_calls: list[tuple[str, str, int]]) -> dict[str, Counter]:
    """{verb: Counter(status -> n)} from the runner's (verb, status, n) rows."""
    table: dict[str, Counter] = {}
    for verb, status, n in api_calls:
        table.setdefault(verb, Counter())[status] += n
    return table
